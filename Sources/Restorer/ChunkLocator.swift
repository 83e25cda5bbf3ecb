// Where each chunk of a repository is, in the work database: what the
// pack listings claim (the first listing naming a pack is believed), what
// pack tables hold once read, and which packs the chosen snapshot may use.
// Claims are hints; a chunk's bytes are always checked against its ID.

import Seal
import Format
import SQLite
import Platform

final class ChunkLocator: WorkDatabasePart {

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
}
