// The operator side's scratch SQLite file, in a repository's private work
// directory: where each chunk is (from the records' pack listings) and,
// while a restore runs, its plan (every entry to create and every place a
// chunk is written). Memory stays bounded by SQLite's page cache whatever
// the number of files and chunks; SQLite sorts the plan by pack on disk.

import Seal
import Backend
import Format
import SQLite
import Platform

final class WorkDatabase {
    private let db: SQLiteDatabase

    init(directory: String) throws(StoreError) {
        do {
            db = try SQLiteDatabase(path: directory + "/work.sqlite")
            // A scratch file: removed with the work directory, never needed after a crash.
            try db.execute("""
                PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA cache_size = -2048;
                PRAGMA temp_store = FILE;
                CREATE TABLE pack (id INTEGER PRIMARY KEY, path TEXT NOT NULL UNIQUE,
                                   listed INTEGER NOT NULL DEFAULT 0, needed INTEGER NOT NULL DEFAULT 1,
                                   scanned INTEGER NOT NULL DEFAULT 0);
                CREATE TABLE chunk (id BLOB NOT NULL, pack INTEGER NOT NULL, length INTEGER NOT NULL,
                                    verified INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (id, pack)) WITHOUT ROWID;
                CREATE TABLE retry (chunk BLOB NOT NULL, length INTEGER NOT NULL, file INTEGER NOT NULL,
                                    path BLOB NOT NULL, offset INTEGER NOT NULL, error TEXT NOT NULL);
                CREATE TABLE node (id INTEGER PRIMARY KEY, kind INTEGER NOT NULL, depth INTEGER NOT NULL,
                                   path BLOB NOT NULL, size INTEGER NOT NULL, entry BLOB);
                CREATE TABLE use (pack INTEGER NOT NULL, chunk BLOB NOT NULL, length INTEGER NOT NULL,
                                  file INTEGER NOT NULL, offset INTEGER NOT NULL);
                """)
        } catch {
            throw Self.failure(error)
        }
    }

    static func failure(_ error: SQLiteError) -> StoreError {
        StoreError(.io, "the restore's work database failed (\(error)); check the free space of the temporary directory (TMPDIR)")
    }

    private func run<R>(_ body: () throws(SQLiteError) -> R) throws(StoreError) -> R {
        do { return try body() } catch { throw Self.failure(error) }
    }

    /// Runs `body` in one transaction (many inserts at the cost of one).
    func batch<R>(_ body: () throws -> R) throws -> R {
        do { return try db.transaction(body) } catch let e as SQLiteError { throw Self.failure(e) }
    }

    // MARK: Chunk locations

    /// Records what a listing says one pack holds. The first listing that
    /// names a pack is the one believed for it (listings are added in the
    /// order their snapshots reached the server, so a later listing cannot
    /// rewrite what an earlier run stored); a later claim is ignored.
    /// - Returns: false if an earlier listing named the pack already.
    @discardableResult
    func addPack(_ path: String, chunks: [(id: ChunkID, length: Int)]) throws(StoreError) -> Bool {
        try run { () throws(SQLiteError) in
            let (pack, listed) = try packRow(path)
            guard !listed else { return false }
            try addChunks(chunks, pack: pack, verified: false)
            return true
        }
    }

    /// Records what a pack's own table says it holds (the truth, where a
    /// listing is only a claim): these locations are tried first.
    func addScanned(_ path: String, chunks: [(id: ChunkID, length: Int)]) throws(StoreError) {
        try run { () throws(SQLiteError) in
            let (pack, _) = try packRow(path)
            let mark = try db.statement("UPDATE pack SET scanned = 1 WHERE id = ?")
            mark.bind(1, pack)
            try mark.run()
            try addChunks(chunks, pack: pack, verified: true)
        }
    }

    /// A pack's row (made on first use) and whether a listing or its table was read for it already.
    private func packRow(_ path: String) throws(SQLiteError) -> (id: Int, listed: Bool) {
        let insert = try db.statement("INSERT OR IGNORE INTO pack (path) VALUES (?)")
        insert.bind(1, path)
        try insert.run()
        let select = try db.statement("SELECT id, listed FROM pack WHERE path = ?")
        select.bind(1, path)
        try select.step()
        let row = (select.int(0), select.int(1) != 0)
        try select.run()
        return row
    }

    /// Marks the pack as read and records where its chunks are; what a
    /// table says replaces what a listing claimed.
    private func addChunks(_ chunks: [(id: ChunkID, length: Int)], pack: Int, verified: Bool) throws(SQLiteError) {
        let mark = try db.statement("UPDATE pack SET listed = 1 WHERE id = ?")
        mark.bind(1, pack)
        try mark.run()
        for chunk in chunks {
            let s = verified ? try db.statement("INSERT OR REPLACE INTO chunk (id, pack, length, verified) VALUES (?, ?, ?, 1)")
                             : try db.statement("INSERT OR IGNORE INTO chunk (id, pack, length, verified) VALUES (?, ?, ?, 0)")
            s.bind(1, chunk.id.bytes); s.bind(2, pack); s.bind(3, chunk.length)
            try s.run()
        }
    }

    /// Packs the chosen snapshot may use whose table has not been read.
    func unscannedPacks() throws(StoreError) -> [String] {
        try run { () throws(SQLiteError) in
            let s = try db.statement("SELECT path FROM pack WHERE needed = 1 AND scanned = 0 ORDER BY id")
            var out: [String] = []
            while try s.step() { out.append(s.text(0)) }
            return out
        }
    }

    /// Limits chunk locations to the packs a snapshot's catalog lists (nil:
    /// any pack, for a snapshot whose catalog no source holds).
    func restrict(to packs: [String]?) throws(StoreError) {
        try run { () throws(SQLiteError) in
            try db.execute("UPDATE pack SET needed = \(packs == nil ? 1 : 0)")
            for path in packs ?? [] {
                let (pack, _) = try packRow(path)
                let s = try db.statement("UPDATE pack SET needed = 1 WHERE id = ?")
                s.bind(1, pack)
                try s.run()
            }
        }
    }

    /// Whether any record lists this pack.
    func isListed(_ path: String) throws(StoreError) -> Bool {
        try run { () throws(SQLiteError) in
            let s = try db.statement("SELECT 1 FROM pack WHERE path = ? AND listed = 1")
            s.bind(1, path)
            return try s.step()
        }
    }

    /// A chunk's first pack among those the chosen snapshot may use (its
    /// row in the work database and path) and plaintext length.
    func location(of id: ChunkID) throws(StoreError) -> (pack: Int, path: String, length: Int)? {
        try candidates(of: id).first
    }

    /// Every pack the chosen snapshot may use that a listing says holds the
    /// chunk, in the order the listings came: where to look again when the
    /// first does not hold it intact.
    func candidates(of id: ChunkID) throws(StoreError) -> [(pack: Int, path: String, length: Int)] {
        try run { () throws(SQLiteError) in
            let s = try db.statement("""
                SELECT chunk.pack, pack.path, chunk.length FROM chunk JOIN pack ON pack.id = chunk.pack
                WHERE chunk.id = ? AND pack.needed = 1 ORDER BY chunk.verified DESC, chunk.pack
                """)
            s.bind(1, id.bytes)
            var out: [(pack: Int, path: String, length: Int)] = []
            while try s.step() { out.append((s.int(0), s.text(1), s.int(2))) }
            return out
        }
    }

    // MARK: Restore plan

    enum NodeKind: Int { case directory = 0, file = 1, hardlink = 2, special = 3, symlink = 4 }

    /// Empties the plan for a new restore.
    func clearPlan() throws(StoreError) {
        try run { () throws(SQLiteError) in
            try db.execute("DELETE FROM node; DELETE FROM use; DELETE FROM retry; DROP INDEX IF EXISTS node_path")
        }
    }

    /// Adds an entry to create; its ID orders entries as the walk met them (parents first).
    func addNode(_ kind: NodeKind, path: [UInt8], depth: Int, size: UInt64 = 0, entry: [UInt8]?) throws(StoreError) -> Int {
        try run { () throws(SQLiteError) in
            let s = try db.statement("INSERT INTO node (kind, depth, path, size, entry) VALUES (?, ?, ?, ?, ?)")
            s.bind(1, kind.rawValue); s.bind(2, depth); s.bind(3, path); s.bind(4, Int64(bitPattern: size))
            if let entry { s.bind(5, entry) } else { s.bindNull(5) }
            try s.run()
            return db.lastInsertedRow
        }
    }

    func removeNode(_ id: Int) throws(StoreError) {
        try run { () throws(SQLiteError) in
            let s = try db.statement("DELETE FROM node WHERE id = ?")
            s.bind(1, id)
            try s.run()
        }
    }

    /// Chunk `chunk` (`length` bytes), held in pack row `pack`, is written to file node `file` at `offset`.
    func addUse(pack: Int, chunk: ChunkID, length: Int, file: Int, offset: UInt64) throws(StoreError) {
        try run { () throws(SQLiteError) in
            let s = try db.statement("INSERT INTO use (pack, chunk, length, file, offset) VALUES (?, ?, ?, ?, ?)")
            s.bind(1, pack); s.bind(2, chunk.bytes); s.bind(3, length); s.bind(4, file); s.bind(5, Int64(bitPattern: offset))
            try s.run()
        }
    }

    // MARK: Chunks to look for elsewhere

    /// A planned write whose chunk was not found intact where the plan
    /// looked first: tried again from the other packs and sources.
    struct Retry { let chunk: ChunkID; let length: Int; let file: Int; let path: [UInt8]; let offset: UInt64; let error: String }

    func addRetry(_ r: Retry) throws(StoreError) {
        try run { () throws(SQLiteError) in
            let s = try db.statement("INSERT INTO retry (chunk, length, file, path, offset, error) VALUES (?, ?, ?, ?, ?, ?)")
            s.bind(1, r.chunk.bytes); s.bind(2, r.length); s.bind(3, r.file); s.bind(4, r.path)
            s.bind(5, Int64(bitPattern: r.offset)); s.bind(6, r.error)
            try s.run()
        }
    }

    /// A statement, its failure as a StoreError.
    private func prepared(_ sql: StaticString) throws -> Statement {
        do { return try db.statement(sql) } catch { throw Self.failure(error) }
    }

    /// The writes to try again, a chunk at a time (all places of one chunk together).
    func forEachRetriedChunk(_ body: (_ chunk: ChunkID, _ length: Int, _ uses: [Retry]) throws -> Void) throws {
        let s = try prepared("SELECT chunk, length, file, path, offset, error FROM retry ORDER BY chunk, file, offset")
        var group: [Retry] = []
        while try run({ () throws(SQLiteError) in try s.step() }) {
            guard let chunk = Digest(bytes: s.blob(0)) else { continue }
            let r = Retry(chunk: chunk, length: s.int(1), file: s.int(2), path: s.blob(3),
                          offset: UInt64(bitPattern: Int64(s.int(4))), error: s.text(5))
            if let first = group.first, first.chunk != r.chunk {
                try body(first.chunk, first.length, group)
                group = []
            }
            group.append(r)
        }
        if let first = group.first { try body(first.chunk, first.length, group) }
    }

    enum NodeOrder {
        /// The order the nodes were added in (the tree's walk order).
        case added
        /// Deepest first, then as added: children before their directory.
        case deepestFirst
    }

    /// Calls `body` with each node of a kind, in `order`.
    func forEachNode(_ kind: NodeKind, order: NodeOrder = .added,
                     _ body: (_ id: Int, _ path: [UInt8], _ size: UInt64, _ depth: Int, _ entry: [UInt8]?) throws -> Void) throws {
        let s = try prepared(order == .added ? "SELECT id, path, size, depth, entry FROM node WHERE kind = ? ORDER BY id"
                                             : "SELECT id, path, size, depth, entry FROM node WHERE kind = ? ORDER BY depth DESC, id")
        s.bind(1, kind.rawValue)
        while try run({ () throws(SQLiteError) in try s.step() }) {
            try body(s.int(0), s.blob(1), UInt64(bitPattern: Int64(s.int(2))), s.int(3), s.isNull(4) ? nil : s.blob(4))
        }
    }

    func count(_ kind: NodeKind) throws(StoreError) -> Int {
        try run { () throws(SQLiteError) in
            let s = try db.statement("SELECT count(*) FROM node WHERE kind = ?")
            s.bind(1, kind.rawValue)
            try s.step()
            return s.int(0)
        }
    }

    /// The path of a node.
    func path(of node: Int) throws(StoreError) -> [UInt8] {
        try run { () throws(SQLiteError) in
            let s = try db.statement("SELECT path FROM node WHERE id = ?")
            s.bind(1, node)
            return try s.step() ? s.blob(0) : []
        }
    }

    /// Indexes nodes by path, once the walk has added them all (for `file(at:)`).
    func indexPaths() throws(StoreError) {
        try run { () throws(SQLiteError) in try db.execute("CREATE INDEX IF NOT EXISTS node_path ON node (path)") }
    }

    /// The file node at a snapshot path (for hardlinks).
    func file(at path: [UInt8]) throws(StoreError) -> Int? {
        try run { () throws(SQLiteError) in
            let s = try db.statement("SELECT id FROM node WHERE kind = 1 AND path = ?")
            s.bind(1, path)
            return try s.step() ? s.int(0) : nil
        }
    }

    /// The packs the plan needs, in the order `forEachUse` visits them.
    func plannedPacks() throws(StoreError) -> [String] {
        try run { () throws(SQLiteError) in
            let s = try db.statement("SELECT path FROM pack WHERE id IN (SELECT DISTINCT pack FROM use) ORDER BY id")
            var out: [String] = []
            while try s.step() { out.append(s.text(0)) }
            return out
        }
    }

    /// Every planned write with its file's path, grouped by pack and then
    /// by chunk (SQLite sorts on disk).
    func forEachUse(_ body: (_ pack: String, _ chunk: ChunkID, _ length: Int, _ file: Int, _ path: [UInt8], _ offset: UInt64) throws -> Void) throws {
        let s = try prepared("""
            SELECT pack.path, use.chunk, use.file, node.path, use.offset, use.length
            FROM use JOIN pack ON pack.id = use.pack JOIN node ON node.id = use.file
            ORDER BY use.pack, use.chunk, use.file, use.offset
            """)
        while try run({ () throws(SQLiteError) in try s.step() }) {
            guard let chunk = Digest(bytes: s.blob(1)) else { continue }
            try body(s.text(0), chunk, s.int(5), s.int(2), s.blob(3), UInt64(bitPattern: Int64(s.int(4))))
        }
    }
}
