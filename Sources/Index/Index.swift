// The client's local index (SQLite, in its state directory), in two parts
// (IndexSchema.swift): the delivery ledger, durable (what each mirror has
// and owes, the snapshots taken), and the caches, rebuildable (chunk →
// pack, the files cache). FORMAT.md, "The local index", gives the schema
// and the invariants. Every error leaving this target is a StoreError: a
// full disk is i/o (exit 74), never "index damaged".

import FoundationEssentials
import Glibc
import Platform
import SQLite

/// The index. One writer at a time (the state directory's lock).
public final class Index {
    let db: SQLiteDatabase
    public let path: String
    /// What each mirror has and owes, and the snapshots taken.
    package let ledger: DeliveryLedger
    /// Which pack holds each chunk.
    package let chunks: ChunkIndex
    /// Unchanged files are neither read nor chunked again.
    package let files: FilesCache
    /// The migrations applied when this index was opened, by name.
    package private(set) var migrationsApplied: [String] = []

    /// Opens an existing index, checking it is sound and of versions this fbk reads.
    /// - Throws: `StoreError.index` naming the problem and what to run.
    public static func open(path: String) throws(StoreError) -> Index {
        guard FileManager.default.fileExists(atPath: path) else {
            throw StoreError(.index, "the index \(path) does not exist")
        }
        return try Index(path: path, create: false)
    }

    /// Creates a new, empty index (refuses if the file exists).
    public static func create(path: String) throws(StoreError) -> Index {
        guard !FileManager.default.fileExists(atPath: path) else {
            throw StoreError(.index, "the index \(path) already exists")
        }
        return try Index(path: path, create: true)
    }

    /// What a snapshot does with an index that is damaged or of an unknown version.
    public enum IfUnusable {
        /// Stop, saying `advice` (how to rebuild it from the mirrors).
        case refuse(advice: String)
        /// Move it aside and start a new one: everything is uploaded again.
        case startOver(warn: (String) -> Void)
    }

    /// The index a snapshot writes. One that is missing (`fbk init` makes
    /// it), damaged or of an unknown version is handled as `ifUnusable`
    /// says. A read-only or unreachable index, or a full disk, is never
    /// taken for damage: those are thrown as they are.
    public static func openForSnapshot(path: String, ifUnusable: IfUnusable) throws(StoreError) -> Index {
        do {
            return try open(path: path)
        } catch where error.code == .index {
            switch ifUnusable {
            case .refuse(let advice):
                throw StoreError(.index, "\(error.message). \(advice)", cause: error)
            case .startOver(let warn):
                guard FileManager.default.fileExists(atPath: path) else { return try create(path: path) }
                let aside = path + ".damaged-\(Int(Date().timeIntervalSince1970))"
                guard rename(path, aside) == 0 else {
                    throw StoreError(.io, "cannot move the unusable index \(path) aside: \(String(cString: strerror(errno)))", cause: error)
                }
                for suffix in ["-wal", "-shm"] { unlink(path + suffix) }
                warn("moved the unusable index to \(aside); starting a new one")
                return try create(path: path)
            }
        }
    }

    private init(path: String, create: Bool) throws(StoreError) {
        self.path = path
        let db: SQLiteDatabase
        do { db = try SQLiteDatabase(path: path) } catch { throw Self.mapped(error, path: path) }
        self.db = db
        ledger = DeliveryLedger(db: db, path: path)
        chunks = ChunkIndex(db: db, path: path)
        files = FilesCache(db: db, path: path)
        try guarded {
            if db.isReadOnly {
                throw StoreError(.io, "the index \(path) cannot be written: check its permissions, attributes (lsattr) and the filesystem's mount options")
            }
            try db.execute("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; PRAGMA cache_size=-2048")
            if create {
                try db.transaction {
                    try db.execute(IndexMeta.table + IndexPart.allCases.map(\.schema).joined(separator: "\n"))
                    try setMeta(IndexMeta.generationKey, IndexMeta.generation)
                    for part in IndexPart.allCases { try setMeta(part.versionKey, part.currentVersion) }
                }
            } else {
                let check = try db.statement("PRAGMA quick_check")
                guard try check.step(), check.text(0) == "ok" else {
                    throw StoreError(.index, "the index \(path) is damaged (SQLite quick_check: \(try check.step() ? check.text(0) : "failed"))")
                }
                guard let generation = try meta(IndexMeta.generationKey) else {
                    throw StoreError(.index, "the index \(path) has no schema version")
                }
                guard generation == IndexMeta.generation else {
                    throw StoreError(.index, "the index \(path) has schema version \(generation); this fbk reads version \(IndexMeta.generation)")
                }
                try migrate()
            }
        }
    }

    // MARK: Versions

    private func meta(_ key: String) throws -> Int? {
        let s = try db.statement("SELECT value FROM meta WHERE key = ?")
        s.bind(1, key)
        guard try s.step() else { return nil }
        return Int(s.text(0)) ?? -1
    }

    private func setMeta(_ key: String, _ value: Int) throws {
        let s = try db.statement("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)")
        s.bind(1, key); s.bind(2, String(value))
        try s.run()
    }

    /// The version of each part (0: an index from before parts had versions).
    package func versions() throws(StoreError) -> [String: Int] {
        try guarded { Dictionary(uniqueKeysWithValues: try IndexPart.allCases.map { ($0.rawValue, try meta($0.versionKey) ?? 0) }) }
    }

    /// Brings every part to its current version, or refuses one written by a newer fbk.
    private func migrate() throws {
        var pending: [(IndexMigration, IndexPart)] = []
        for part in IndexPart.allCases {
            var version = try meta(part.versionKey) ?? 0
            guard version <= part.currentVersion, version >= 0 else {
                throw StoreError(.index, "the index \(path) has \(part.rawValue) version \(version), written by a newer fbk; this one reads version \(part.currentVersion): upgrade fbk")
            }
            while version < part.currentVersion {
                guard let m = IndexMigration.all.first(where: { $0.part == part && $0.from == version }) else {
                    throw StoreError(.index, "the index \(path) has \(part.rawValue) version \(version), which this fbk cannot migrate")
                }
                pending.append((m, part))
                version += 1
            }
        }
        guard !pending.isEmpty else { return }
        try db.transaction {
            for (m, part) in pending {
                if !m.sql.isEmpty { try db.execute(m.sql) }
                try setMeta(part.versionKey, m.from + 1)
            }
        }
        migrationsApplied = pending.map(\.0.name)
    }

    // MARK: The reuse clock

    /// The reference time (Unix seconds) of the last snapshot recorded: a
    /// clock reading earlier than this went backwards (FORMAT.md, "Retention").
    package func lastReferenceTime() throws(StoreError) -> Int? {
        try guarded { try meta(Self.lastReferenceKey) }
    }

    package func setLastReferenceTime(_ time: Int) throws(StoreError) {
        try guarded { try setMeta(Self.lastReferenceKey, time) }
    }

    private static let lastReferenceKey = "last_reference_time"

    /// When the live share of packs was last measured (Unix seconds, reference time).
    package func lastLivenessScan() throws(StoreError) -> Int? {
        try guarded { try meta(Self.livenessKey) }
    }

    package func setLastLivenessScan(_ time: Int) throws(StoreError) {
        try guarded { try setMeta(Self.livenessKey, time) }
    }

    private static let livenessKey = "last_liveness_scan"

    // MARK: Changes

    /// Runs `body` in one transaction; rolls back if it throws.
    package func transaction<R>(_ body: () throws -> R) throws(StoreError) -> R {
        try guarded { try db.transaction(body) }
    }

    /// Forgets packs: their chunks leave the chunk index, their objects the
    /// ledger. The only way a chunk row is ever removed. Files-cache rows
    /// name packs by their object IDs, so the whole files cache is cleared
    /// in the same transaction: a cached file can never point at a pack
    /// that is gone.
    package func forgetPacks(_ ids: Set<Int>) throws(StoreError) {
        guard !ids.isEmpty else { return }
        try transaction {
            for id in ids.sorted() {
                for sql: StaticString in ["DELETE FROM chunks WHERE pack = ?", "DELETE FROM delivered WHERE object = ?",
                                          "DELETE FROM abandoned WHERE object = ?", "DELETE FROM objects WHERE id = ? AND kind = 'pack'"] {
                    let s = try db.statement(sql)
                    s.bind(1, id)
                    try s.run()
                }
            }
            try files.clear()
        }
    }

    // MARK: Errors

    /// Runs index work, mapping every error to a StoreError at this target's boundary.
    func guarded<R>(_ body: () throws -> R) throws(StoreError) -> R {
        do { return try body() } catch { throw Self.mapped(error, path: path) }
    }

    /// A SQLite error as what it means for the operator: a disk that is
    /// full or failing, or an index that cannot be written, is i/o; only
    /// damage, or an error SQLite gives no reason for, is the index's.
    static func mapped(_ error: any Error, path: String) -> StoreError {
        if let e = error as? StoreError { return e }
        guard let e = error as? SQLiteError else { return StoreError.wrapping(error, as: .index, "the index \(path)") }
        if e.isReadOnly {
            return StoreError(.io, "the index \(path) cannot be written (\(e.message)): check its permissions, attributes (lsattr) and the filesystem's mount options", cause: e)
        }
        let directory = PathName.parent(path)
        let free = FileSystem.availableBytes(directory.isEmpty ? "." : directory)
        if e.isDiskTrouble || (free.map { $0 < 1 << 20 } ?? false) {
            return StoreError(.io, "the filesystem holding the index \(path) is full or failing (\(free.map { "\($0) bytes free" } ?? "free space unknown"); SQLite: \(e.message)): "
                + "free space there (or check the disk) and run again; the index is not damaged", cause: e)
        }
        if e.isCorruption { return StoreError(.index, "the index \(path) is damaged: \(e.message)", cause: e) }
        return StoreError(.index, "the index \(path) cannot be used: \(e.message)", cause: e)
    }
}

/// A part of the index: it shares the connection and maps its errors the same way.
package class IndexPartAccess {
    let db: SQLiteDatabase
    let path: String

    init(db: SQLiteDatabase, path: String) {
        self.db = db
        self.path = path
    }

    func guarded<R>(_ body: () throws -> R) throws(StoreError) -> R {
        do { return try body() } catch { throw Index.mapped(error, path: path) }
    }
}
