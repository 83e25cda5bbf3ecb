import Foundation
import Format
import Index
import Platform
import Seal
@testable import SQLite
import Testing
import TestSupport

/// The index's two parts, their versions and migrations, and the rules
/// the types enforce.
@Suite struct IndexTests {
    static let fixture = repositoryRoot + "/Tests/Fixtures/index-v0.4/index.sqlite"

    /// A writable copy of the 0.4 index.
    func oldIndex() throws -> (TemporaryDirectory, String) {
        let dir = try TemporaryDirectory()
        let path = dir.file("index.sqlite")
        try FileManager.default.copyItem(atPath: Self.fixture, toPath: path)
        return (dir, path)
    }

    @Test func anIndexFromBeforePartVersionsIsMigratedNotRefused() throws {
        let (dir, path) = try oldIndex()
        defer { withExtendedLifetime(dir) {} }
        let index = try Index.open(path: path)
        #expect(index.migrationsApplied.count == 3, "\(index.migrationsApplied)")
        #expect(index.migrationsApplied.contains("ledger 2: the certificates each object is sealed to, which packs are renewed, the directories each mirror has"))
        #expect(try index.versions() == ["ledger": 2, "caches": 1])
        // What 0.4 recorded is all there.
        #expect(try index.ledger.snapshotIDs.count == 2)
        #expect(try index.chunks.chunkCount == 9)
        #expect(try index.chunks.packIDs().count >= 1)
        // Opened again, nothing is left to migrate.
        #expect(try Index.open(path: path).migrationsApplied.isEmpty)
    }

    @Test func aPartFromANewerFbkIsRefused() throws {
        let (dir, path) = try oldIndex()
        defer { withExtendedLifetime(dir) {} }
        _ = try Index.open(path: path)
        let db = try SQLiteDatabase(path: path)
        try db.execute("UPDATE meta SET value = '7' WHERE key = 'caches_version'")
        do {
            _ = try Index.open(path: path)
            Issue.record("a caches part of version 7 was opened")
        } catch {
            #expect(error.code == .index && error.message.contains("newer fbk"), "\(error)")
        }
    }

    @Test func forgettingAPackClearsTheFilesCacheWithIt() throws {
        let (dir, path) = try oldIndex()
        defer { withExtendedLifetime(dir) {} }
        let index = try Index.open(path: path)
        let packs = try index.chunks.packIDs()
        let before = try index.chunks.chunkPacks()
        let gone = try #require(packs.min())
        let cachedBefore = try countRows(path, "files")
        #expect(cachedBefore > 0)
        try index.forgetPacks([gone])
        #expect(try index.chunks.packIDs() == packs.subtracting([gone]))
        #expect(try index.chunks.chunkCount < before.count)
        #expect(try countRows(path, "files") == 0, "a cached file could point at the forgotten pack")
    }

    @Test func aSnapshotOfAMissingIndexFollowsThePolicy() throws {
        let dir = try TemporaryDirectory()
        let path = dir.file("index.sqlite")
        do {
            _ = try Index.openForSnapshot(path: path, ifUnusable: .refuse(advice: "rebuild it"))
            Issue.record("a missing index was created without --allow-reupload")
        } catch {
            #expect(error.code == .index && error.message.hasSuffix("rebuild it"), "\(error)")
        }
        try dir.write("index.sqlite", Array("not a database at all, but long enough to look like a header".utf8))
        let warnings = WarningBox()
        let index = try Index.openForSnapshot(path: path, ifUnusable: .startOver(warn: { warnings.add($0) }))
        #expect(try index.ledger.snapshotIDs.isEmpty)
        #expect(warnings.values.count == 1 && warnings.values[0].contains("moved the unusable index"), "\(warnings.values)")
        let aside = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasPrefix("index.sqlite.damaged-") }
        #expect(aside.count == 1)
    }

    func countRows(_ path: String, _ table: String) throws -> Int {
        let r = try runTool("sqlite3", [path, "SELECT count(*) FROM \(table)"])
        return Int(String(decoding: r.stdout, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
    }
}

/// The statement cache hands each use of a query its own turn.
@Suite struct SQLiteStatementTests {
    static let select: StaticString = "SELECT n FROM t WHERE n >= ? ORDER BY n"

    // With one statement per query, the inner use reset the outer cursor,
    // which then started over for ever: the loop stops after 10 rows.
    @Test func theSameQueryInsideItsOwnLoopLeavesTheOuterCursorAlone() throws {
        let dir = try TemporaryDirectory()
        let db = try SQLiteDatabase(path: dir.file("t.sqlite"))
        try db.execute("CREATE TABLE t(n INTEGER); INSERT INTO t VALUES (1), (2), (3);")
        var outer: [Int] = []
        var inner: [[Int]] = []
        let s = try db.statement(Self.select)
        s.bind(1, 1)
        while try s.step() {
            guard outer.count < 10 else { break }
            outer.append(s.int(0))
            let again = try db.statement(Self.select)
            again.bind(1, s.int(0))
            var seen: [Int] = []
            while try again.step() { seen.append(again.int(0)) }
            inner.append(seen)
        }
        #expect(outer == [1, 2, 3])
        #expect(inner == [[1, 2, 3], [2, 3], [3]])
        // After both ended, the cached statement is used again from the start.
        let later = try db.statement(Self.select)
        later.bind(1, 2)
        var rows: [Int] = []
        while try later.step() { rows.append(later.int(0)) }
        #expect(rows == [2, 3])
    }
}

final class WarningBox: @unchecked Sendable {
    private(set) var values: [String] = []
    func add(_ v: String) { values.append(v) }
}
