// The operator side's scratch SQLite file, in a repository's private work
// directory: where each chunk is (from the records' pack listings) and,
// while a restore runs, its plan (every entry to create and every place a
// chunk is written). Memory stays bounded by SQLite's page cache whatever
// the number of files and chunks; SQLite sorts the plan by pack on disk.

import Seal

final class WorkDatabase {
    private let db: SQLiteDatabase

    init(directory: String) throws(StoreError) {
        do {
            db = try SQLiteDatabase(path: directory + "/work.sqlite")
            // A scratch file: removed with the work directory, never needed after a crash.
            try db.execute("""
                PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA cache_size = -2048;
                PRAGMA temp_store = FILE;
                CREATE TABLE pack (id INTEGER PRIMARY KEY, path TEXT NOT NULL UNIQUE);
                CREATE TABLE chunk (id BLOB PRIMARY KEY, pack INTEGER NOT NULL, length INTEGER NOT NULL) WITHOUT ROWID;
                CREATE TABLE node (id INTEGER PRIMARY KEY, kind INTEGER NOT NULL, depth INTEGER NOT NULL,
                                   path BLOB NOT NULL, size INTEGER NOT NULL, entry BLOB);
                CREATE TABLE use (pack INTEGER NOT NULL, chunk BLOB NOT NULL, file INTEGER NOT NULL, offset INTEGER NOT NULL);
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

    /// Records the chunks of one pack. A chunk already located keeps its first pack.
    func addPack(_ path: String, chunks: [(id: ChunkID, length: Int)]) throws(StoreError) {
        try run { () throws(SQLiteError) in
            let insert = try db.statement("INSERT OR IGNORE INTO pack (path) VALUES (?)")
            insert.bind(1, path)
            try insert.run()
            let select = try db.statement("SELECT id FROM pack WHERE path = ?")
            select.bind(1, path)
            guard try select.step() else { return }
            let pack = select.int(0)
            for chunk in chunks {
                let s = try db.statement("INSERT OR IGNORE INTO chunk (id, pack, length) VALUES (?, ?, ?)")
                s.bind(1, chunk.id.bytes); s.bind(2, pack); s.bind(3, chunk.length)
                try s.run()
            }
        }
    }

    /// Whether any record lists this pack.
    func isListed(_ path: String) throws(StoreError) -> Bool {
        try run { () throws(SQLiteError) in
            let s = try db.statement("SELECT 1 FROM pack WHERE path = ?")
            s.bind(1, path)
            return try s.step()
        }
    }

    /// A chunk's pack (its row number and path) and plaintext length.
    func location(of id: ChunkID) throws(StoreError) -> (pack: Int, path: String, length: Int)? {
        try run { () throws(SQLiteError) in
            let s = try db.statement("SELECT chunk.pack, pack.path, chunk.length FROM chunk JOIN pack ON pack.id = chunk.pack WHERE chunk.id = ?")
            s.bind(1, id.bytes)
            guard try s.step() else { return nil }
            return (s.int(0), s.text(1), s.int(2))
        }
    }

    // MARK: Restore plan

    enum NodeKind: Int { case directory = 0, file = 1, hardlink = 2, special = 3, symlink = 4 }

    /// Empties the plan for a new restore.
    func clearPlan() throws(StoreError) {
        try run { () throws(SQLiteError) in
            try db.execute("DELETE FROM node; DELETE FROM use; DROP INDEX IF EXISTS node_path")
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

    /// Chunk `chunk`, held in pack row `pack`, is written to file node `file` at `offset`.
    func addUse(pack: Int, chunk: ChunkID, file: Int, offset: UInt64) throws(StoreError) {
        try run { () throws(SQLiteError) in
            let s = try db.statement("INSERT INTO use (pack, chunk, file, offset) VALUES (?, ?, ?, ?)")
            s.bind(1, pack); s.bind(2, chunk.bytes); s.bind(3, file); s.bind(4, Int64(bitPattern: offset))
            try s.run()
        }
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
        let s: Statement
        do {
            switch order {
            case .added: s = try db.statement("SELECT id, path, size, depth, entry FROM node WHERE kind = ? ORDER BY id")
            case .deepestFirst: s = try db.statement("SELECT id, path, size, depth, entry FROM node WHERE kind = ? ORDER BY depth DESC, id")
            }
        } catch { throw Self.failure(error) }
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
    func forEachUse(_ body: (_ pack: String, _ chunk: ChunkID, _ file: Int, _ path: [UInt8], _ offset: UInt64) throws -> Void) throws {
        let s: Statement
        do {
            s = try db.statement("""
                SELECT pack.path, use.chunk, use.file, node.path, use.offset
                FROM use JOIN pack ON pack.id = use.pack JOIN node ON node.id = use.file
                ORDER BY use.pack, use.chunk, use.file, use.offset
                """)
        } catch { throw Self.failure(error) }
        while try run({ () throws(SQLiteError) in try s.step() }) {
            guard let chunk = Digest(bytes: s.blob(1)) else { continue }
            try body(s.text(0), chunk, s.int(2), s.blob(3), UInt64(bitPattern: Int64(s.int(4))))
        }
    }
}
