import Foundation
import Seal
import Format
import Index
import Testing
import TestSupport

@Suite(.hangGuard) struct IndexRebuildTests {
    /// Fresh random bytes (each call different, so nothing deduplicates).
    func random(_ n: Int) -> [UInt8] { sampleBytes(n, seed: UInt64.random(in: 1...UInt64.max)) }

    func rebuild(_ f: SnapshotFixture, out: String) throws -> CLI.Result {
        try CLI.run(["index", "rebuild", "--client", "c1", "--secret", f.dir.file("etc/secret"),
                     "--from", f.mirrors[0].storageRoot, "--mirror-url", f.mirrors[0].url("c1"),
                     "--from", f.mirrors[1].storageRoot, "--mirror-url", f.mirrors[1].url("c1"),
                     "--out", out, "--json"])
    }

    /// New chunks on mirror 0 since `before`, by kind.
    func newDataChunks(_ f: SnapshotFixture, since before: [ChunkID: (kind: ChunkKind, bytes: [UInt8])]) throws -> Int {
        try f.chunks(0).filter { before[$0.key] == nil && $0.value.kind == .data }.count
    }

    @Test func rebuiltIndexEqualsTheOriginalAndNothingIsUploadedAgain() throws {
        let f = try SnapshotFixture()
        for i in 0..<4 { try f.dir.write("src/f\(i)", random(600_000)) }
        try f.dir.write("src/sub/text", Array(String(repeating: "line\n", count: 10_000).utf8))
        #expect(try f.snapshot().status == 0)
        try f.dir.write("src/f4", random(300_000))
        #expect(try f.snapshot().status == 0)

        let indexPath = f.dir.file("state/index.sqlite")
        let original = try Index.open(path: indexPath).chunks.chunkPacks()
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: indexPath + suffix) }
        let r = try rebuild(f, out: indexPath)
        #expect(r.status == 0, "\(r.stdout) \(r.stderr)")
        let summary = try JSONSerialization.jsonObject(with: r.stdoutBytes) as? [String: Any] ?? [:]
        #expect(summary["snapshots"] as? Int == 2)
        #expect(try Index.open(path: indexPath).chunks.chunkPacks() == original)

        let before = try f.chunks(0)
        let again = try f.snapshot()
        #expect(again.status == 0, "\(again.stderr)")
        #expect((again.summary["bytes_read"] as? Int ?? 0) > 0)  // the files cache starts empty
        #expect(try newDataChunks(f, since: before) == 0)
        #expect(f.objects(0) == f.objects(1))
    }

    @Test func aDamagedListingIsTakenFromTheOtherMirror() throws {
        let f = try SnapshotFixture()
        try f.dir.write("src/f", random(700_000))
        #expect(try f.snapshot().status == 0)
        let indexPath = f.dir.file("state/index.sqlite")
        let original = try Index.open(path: indexPath).chunks.chunkPacks()
        let listing = try #require(f.objects(0).first { $0.hasSuffix(".listing") })
        var damaged = [UInt8](FileManager.default.contents(atPath: f.path(0, listing))!)
        damaged[damaged.count / 2] ^= 1
        try Data(damaged).write(to: URL(fileURLWithPath: f.path(0, listing)))

        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: indexPath + suffix) }
        let r = try rebuild(f, out: indexPath)
        #expect(r.status == 0, "\(r.stdout) \(r.stderr)")
        let summary = try JSONSerialization.jsonObject(with: r.stdoutBytes) as? [String: Any] ?? [:]
        #expect(summary["snapshots"] as? Int == 1)
        #expect((summary["warnings"] as? [String] ?? []).contains { $0.contains(listing) && $0.contains("SHA-256") })
        #expect(try Index.open(path: indexPath).chunks.chunkPacks() == original)
    }

    @Test func rebuildingOntoAnOlderIndexMerges() throws {
        let f = try SnapshotFixture()
        try f.dir.write("src/a", random(600_000))
        #expect(try f.snapshot().status == 0)
        // Keep the index as it was after the first snapshot (a restored, older state directory).
        let indexPath = f.dir.file("state/index.sqlite")
        #expect(try runTool("sqlite3", [indexPath, ".backup " + f.dir.file("older.sqlite")]).status == 0)
        try f.dir.write("src/b", random(600_000))
        #expect(try f.snapshot().status == 0)
        let current = try Index.open(path: indexPath).chunks.chunkPacks()
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: indexPath + suffix) }
        try FileManager.default.copyItem(atPath: f.dir.file("older.sqlite"), toPath: indexPath)
        #expect(try Index.open(path: indexPath).chunks.chunkPacks().count < current.count)
        let r = try rebuild(f, out: indexPath)
        #expect(r.status == 0, "\(r.stdout) \(r.stderr)")
        #expect(try Index.open(path: indexPath).chunks.chunkPacks() == current)
        let before = try f.chunks(0)
        #expect(try f.snapshot().status == 0)
        #expect(try newDataChunks(f, since: before) == 0)
    }

    @Test func packsOneMirrorLacksAreDeliveredNotUploadedAgain() throws {
        let f = try SnapshotFixture()
        for i in 0..<4 { try f.dir.write("src/f\(i)", random(600_000)) }
        #expect(try f.snapshot().status == 0)
        let lost = f.objects(1).filter { $0.hasSuffix(".pack") }.sorted().prefix(2)
        for p in lost { unlink(f.path(1, p)) }

        let indexPath = f.dir.file("state/index.sqlite")
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: indexPath + suffix) }
        let r = try rebuild(f, out: indexPath)
        #expect(r.status == 0, "\(r.stdout) \(r.stderr)")
        let summary = try JSONSerialization.jsonObject(with: r.stdoutBytes) as? [String: Any] ?? [:]
        #expect(summary["respooled"] as? Int == lost.count)

        let before = try f.chunks(0)
        let again = try f.snapshot()
        #expect(again.status == 0, "\(again.stderr)")
        #expect((again.summary["spool_delivered"] as? Int ?? 0) >= lost.count)
        for p in lost { #expect(FileManager.default.fileExists(atPath: f.path(1, p)), "\(p) not re-delivered") }
        #expect(try newDataChunks(f, since: before) == 0)
        #expect(f.objects(0) == f.objects(1))
    }

    /// Whether this machine can make a file immutable (root, chattr, a filesystem with the attribute).
    static let immutableFilesSupported: Bool = {
        guard geteuid() == 0, let dir = try? TemporaryDirectory(), let f = try? dir.write("probe", [1]),
              (try? runTool("chattr", ["+i", f]))?.status == 0 else { return false }
        _ = try? runTool("chattr", ["-i", f])
        return true
    }()

    @Test(.enabled(if: immutableFilesSupported, "needs root and chattr +i"))
    func aReadOnlyIndexStopsTheSnapshotBeforeAnyUpload() throws {
        let f = try SnapshotFixture()
        try f.dir.write("src/x", random(50_000))
        #expect(try f.snapshot().status == 0)
        let before = f.objects(0)
        try f.dir.write("src/y", random(50_000))
        let index = f.dir.file("state/index.sqlite")
        #expect(try runTool("chattr", ["+i", index]).status == 0)
        defer { _ = try? runTool("chattr", ["-i", index]) }
        let r = try f.snapshot()
        #expect(r.status == 74, "\(r.stderr)")
        #expect(r.stderr.contains("cannot be written"), "\(r.stderr)")
        #expect(!r.stderr.contains("rebuild"), "a read-only index is not damage")
        #expect(f.objects(0) == before, "nothing is uploaded that could not be recorded")
        _ = try runTool("chattr", ["-i", index])
        #expect(try f.snapshot().status == 0)
    }

    @Test func damagedOrMissingIndexStopsTheSnapshotWithTheRebuildCommand() throws {
        let f = try SnapshotFixture()
        try f.dir.write("src/x", random(100_000))
        #expect(try f.snapshot().status == 0)
        let indexPath = f.dir.file("state/index.sqlite")
        // Checkpoint the WAL into the file, then cut the file short.
        for suffix in ["-wal", "-shm"] { try? FileManager.default.removeItem(atPath: indexPath + suffix) }
        let size = (try FileManager.default.attributesOfItem(atPath: indexPath)[.size] as? Int) ?? 0
        truncate(indexPath, off_t(max(size / 2, 100)))
        let truncated = try f.snapshot()
        #expect(truncated.status == 66)
        #expect(truncated.stderr.contains("fbk index rebuild"), "\(truncated.stderr)")

        try Data("not a database at all, just text".utf8).write(to: URL(fileURLWithPath: indexPath))
        let garbage = try f.snapshot()
        #expect(garbage.status == 66)
        #expect(garbage.stderr.contains("fbk index rebuild"))

        unlink(indexPath)
        let missing = try f.snapshot()
        #expect(missing.status == 66)
        #expect(missing.stderr.contains("does not exist"))

        let reupload = try CLI.run(["snapshot", "--config", f.configPath, "--allow-reupload", "--json"])
        #expect(reupload.status == 0, "\(reupload.stderr)")
    }
}

extension IndexRebuildTests {
    /// A pack one mirror lacks is copied into the spool (for the client's
    /// next run to deliver) only from a copy its catalog's SHA-256 vouches
    /// for: a hostile mirror's same-size forgery is never passed on.
    @Test func aForgedCopyIsNotSpooledForTheOtherMirror() throws {
        let f = try SnapshotFixture()
        try f.dir.write("src/f", random(700_000))
        #expect(try f.snapshot().status == 0)
        let pack = try #require(f.objects(0).first { $0.hasSuffix(".pack") })
        var forged = [UInt8](FileManager.default.contents(atPath: f.path(0, pack))!)
        forged[forged.count / 2] ^= 1
        try Data(forged).write(to: URL(fileURLWithPath: f.path(0, pack)))
        try FileManager.default.removeItem(atPath: f.path(1, pack))

        let out = f.dir.file("rebuilt/index.sqlite")
        let r = try rebuild(f, out: out)
        #expect(r.status == 0, "\(r.stdout) \(r.stderr)")
        let summary = try JSONSerialization.jsonObject(with: r.stdoutBytes) as? [String: Any] ?? [:]
        let warnings = summary["warnings"] as? [String] ?? []
        #expect(warnings.contains { $0.contains(pack) && $0.contains("SHA-256 differs") }, "\(warnings)")
        #expect(!FileManager.default.fileExists(atPath: f.dir.file("rebuilt/spool/") + (pack as NSString).lastPathComponent))
    }
}
