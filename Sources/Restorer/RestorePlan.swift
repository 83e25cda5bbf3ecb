// A restore's plan, in the work database: every entry to create (nodes,
// in walk order) and every place a chunk's bytes are written (uses),
// which SQLite sorts by pack on disk, so memory stays bounded whatever the
// number of files; and the writes to try again from another copy.

import Seal
import Format
import SQLite
import Platform

final class RestorePlan: WorkDatabasePart {

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
        do { return try db.statement(sql) } catch { throw WorkDatabase.failure(error) }
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
