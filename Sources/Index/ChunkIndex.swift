// Which pack holds each chunk: a cache of what the pack listings say
// (`fbk index rebuild` makes it again from them). A chunk row names the
// newest pack holding the chunk: it moves only when a snapshot stores the
// chunk again because its pack is no longer reusable (FORMAT.md,
// "Retention"), and leaves only with its pack, through `Index.forgetPacks`.

import Format
import FoundationEssentials
import Glibc
import Platform
import Seal

package final class ChunkIndex: IndexPartAccess {
    /// Whether a chunk is already stored in a pack on at least one mirror.
    package func hasChunk(_ id: ChunkID) throws(StoreError) -> Bool {
        try guarded {
        let s = try db.statement("SELECT 1 FROM chunks WHERE id = ?")
        s.bind(1, id.bytes)
        return try s.step()
        }
    }

    /// The pack (object row) holding a chunk.
    package func packOfChunk(_ id: ChunkID) throws(StoreError) -> Int? {
        try guarded {
        let s = try db.statement("SELECT pack FROM chunks WHERE id = ?")
        s.bind(1, id.bytes)
        return try s.step() ? s.int(0) : nil
        }
    }

    /// The pack and plain length of a chunk.
    package func location(of id: ChunkID) throws(StoreError) -> (pack: Int, plainLength: Int)? {
        try guarded {
        let s = try db.statement("SELECT pack, plain_length FROM chunks WHERE id = ?")
        s.bind(1, id.bytes)
        return try s.step() ? (s.int(0), s.int(1)) : nil
        }
    }

    /// Records a chunk's pack. `renewing`: the chunk was stored again in a
    /// new pack (its old one is past the reuse horizon), which it now names;
    /// otherwise the first pack recorded stays (an index rebuild believes
    /// the first listing to name a chunk).
    package func addChunk(_ id: ChunkID, pack: Int, kind: ChunkKind, plainLength: Int, renewing: Bool = false) throws(StoreError) {
        try guarded {
        let s = try renewing
            ? db.statement("INSERT INTO chunks(id, pack, kind, plain_length) VALUES (?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET pack = excluded.pack")
            : db.statement("INSERT OR IGNORE INTO chunks(id, pack, kind, plain_length) VALUES (?, ?, ?, ?)")
        s.bind(1, id.bytes); s.bind(2, pack); s.bind(3, Int(kind.rawValue)); s.bind(4, plainLength)
        try s.run()
        }
    }

    package var chunkCount: Int {
        get throws(StoreError) {
            try guarded {
            let s = try db.statement("SELECT count(*) FROM chunks")
            try s.step()
            return s.int(0)
            }
        }
    }

    /// Every chunk and the path of the pack holding it (for comparing indexes).
    package func chunkPacks() throws(StoreError) -> [ChunkID: String] {
        try guarded {
        let s = try db.statement("SELECT c.id, o.path FROM chunks c JOIN objects o ON o.id = c.pack")
        var out: [ChunkID: String] = [:]
        while try s.step() { if let id = Digest(bytes: s.blob(0)) { out[id] = s.text(1) } }
        return out
        }
    }

    /// The object IDs of every pack. Files-cache rows name packs by these
    /// IDs, which stay valid because packs leave only through
    /// `Index.forgetPacks`, which clears the files cache with them; a row
    /// naming a pack that is no longer reusable is looked up again, chunk
    /// by chunk, or its file read again.
    package func packIDs() throws(StoreError) -> Set<Int> {
        try guarded {
        let s = try db.statement("SELECT id FROM objects WHERE kind = 'pack'")
        var out = Set<Int>()
        while try s.step() { out.insert(s.int(0)) }
        return out
        }
    }
}
