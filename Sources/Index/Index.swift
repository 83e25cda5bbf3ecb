// The client's local index (SQLite, in its state directory): which chunks
// the mirrors already hold, which objects each mirror has, the spool of
// objects owed to a mirror that was down, snapshots taken, and a files
// cache so that unchanged files are neither read nor chunked again.
// FORMAT.md, "The local index", gives the schema and the invariants.

import Foundation
import Seal
import SQLite
import Format
import Backend
import Platform

/// The index. One writer at a time (the state directory's lock).
public final class Index {
    public static let schemaVersion = 1
    let db: SQLiteDatabase
    public let path: String

    /// Opens an existing index, checking it is sound and of this version.
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

    private init(path: String, create: Bool) throws(StoreError) {
        self.path = path
        do {
            db = try SQLiteDatabase(path: path)
            if db.isReadOnly {
                throw StoreError(.io, "the index \(path) cannot be written: check its permissions, attributes (lsattr) and the filesystem's mount options")
            }
            try db.execute("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; PRAGMA cache_size=-2048")
            if create {
                try db.execute(Self.schema)
                let s = try db.statement("INSERT INTO meta(key, value) VALUES ('schema_version', ?)")
                s.bind(1, String(Self.schemaVersion))
                try s.run()
            } else {
                let check = try db.statement("PRAGMA quick_check")
                guard try check.step(), check.text(0) == "ok" else {
                    throw StoreError(.index, "the index \(path) is damaged (SQLite quick_check: \(try check.step() ? check.text(0) : "failed"))")
                }
                let v = try db.statement("SELECT value FROM meta WHERE key = 'schema_version'")
                guard try v.step() else { throw StoreError(.index, "the index \(path) has no schema version") }
                guard Int(v.text(0)) == Self.schemaVersion else {
                    throw StoreError(.index, "the index \(path) has schema version \(v.text(0)); this fbk reads version \(Self.schemaVersion)")
                }
            }
        } catch let e as StoreError {
            throw e
        } catch let e as SQLiteError where e.isReadOnly {
            throw StoreError(.io, "the index \(path) cannot be written (\(e.message)): check its permissions, attributes (lsattr) and the filesystem's mount options")
        } catch let e as SQLiteError {
            let directory = (path as NSString).deletingLastPathComponent
            if let free = FileSystem.availableBytes(directory.isEmpty ? "." : directory), free < 1 << 20 {
                throw StoreError(.io, "the filesystem holding the index \(path) is full (\(free) bytes free; SQLite: \(e.message)): "
                    + "free space there and run again; the index is not damaged")
            }
            throw StoreError(.index, "the index \(path) cannot be used: \(e.message)")
        } catch {
            throw StoreError(.index, "the index \(path) cannot be used: \(error)")
        }
    }

    static let schema = """
        CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE mirrors(id INTEGER PRIMARY KEY, url TEXT NOT NULL UNIQUE);
        -- Every object stored on at least one mirror: packs, snapshot records, catalogs.
        CREATE TABLE objects(
            id INTEGER PRIMARY KEY,
            path TEXT NOT NULL UNIQUE,          -- relative to the client directory
            kind TEXT NOT NULL CHECK (kind IN ('pack', 'record', 'catalog', 'escrow', 'listing')),
            size INTEGER NOT NULL,
            sha256 BLOB NOT NULL,
            created INTEGER NOT NULL,           -- unix seconds
            last_referenced INTEGER NOT NULL,   -- unix seconds of the newest snapshot needing it
            spool TEXT                          -- file name in the spool directory while a mirror still lacks it
        );
        CREATE TABLE delivered(object INTEGER NOT NULL REFERENCES objects(id),
                               mirror INTEGER NOT NULL REFERENCES mirrors(id),
                               PRIMARY KEY(object, mirror)) WITHOUT ROWID;
        -- Objects a mirror lacks whose spool copy was given up (spool full): only
        -- an operator's mirror-sync can bring them over.
        CREATE TABLE abandoned(object INTEGER NOT NULL, mirror INTEGER NOT NULL,
                               PRIMARY KEY(object, mirror)) WITHOUT ROWID;
        CREATE TABLE chunks(id BLOB PRIMARY KEY, pack INTEGER NOT NULL REFERENCES objects(id),
                            kind INTEGER NOT NULL, plain_length INTEGER NOT NULL) WITHOUT ROWID;
        CREATE INDEX chunks_by_pack ON chunks(pack);
        CREATE TABLE snapshots(id TEXT PRIMARY KEY, started INTEGER NOT NULL, finished INTEGER NOT NULL,
                               root BLOB NOT NULL, record INTEGER NOT NULL, catalog INTEGER NOT NULL,
                               summary TEXT NOT NULL);
        CREATE TABLE files(path BLOB PRIMARY KEY, dev INTEGER NOT NULL, ino INTEGER NOT NULL,
                           size INTEGER NOT NULL, mtime INTEGER NOT NULL, ctime INTEGER NOT NULL,
                           regions BLOB NOT NULL) WITHOUT ROWID;
        """

    // MARK: Mirrors

    /// The row ID of a mirror URL, created on first use. URLs that name
    /// the same place (`…/pi/` and `…/pi`, `HTTP://Host:80/`) are one mirror,
    /// so a respelled URL in the configuration keeps what it was delivered.
    public func mirrorID(_ url: String) throws -> Int {
        let identity = MirrorIdentity(url)
        let all = try db.statement("SELECT id, url FROM mirrors ORDER BY id")
        var found: Int?
        while try all.step() {
            if found == nil && MirrorIdentity(all.text(1)) == identity { found = all.int(0) }
        }
        if let found { return found }
        let insert = try db.statement("INSERT INTO mirrors(url) VALUES (?)")
        insert.bind(1, url)
        try insert.run()
        return db.lastInsertedRow
    }

    // MARK: Chunks

    /// Whether a chunk is already stored in a pack on at least one mirror.
    public func hasChunk(_ id: ChunkID) throws -> Bool {
        let s = try db.statement("SELECT 1 FROM chunks WHERE id = ?")
        s.bind(1, id.bytes)
        return try s.step()
    }

    /// The object IDs of every pack. Files-cache rows name packs by these
    /// IDs, which stay valid because no object or chunk row is ever deleted
    /// and a chunk never moves to another pack (INSERT OR IGNORE): anything
    /// that ever prunes the index must clear the files cache too.
    package func packIDs() throws -> Set<Int> {
        let s = try db.statement("SELECT id FROM objects WHERE kind = 'pack'")
        var out = Set<Int>()
        while try s.step() { out.insert(s.int(0)) }
        return out
    }

    /// The pack (object row) holding a chunk.
    public func packOfChunk(_ id: ChunkID) throws -> Int? {
        let s = try db.statement("SELECT pack FROM chunks WHERE id = ?")
        s.bind(1, id.bytes)
        return try s.step() ? s.int(0) : nil
    }

    public var chunkCount: Int {
        get throws {
            let s = try db.statement("SELECT count(*) FROM chunks")
            try s.step()
            return s.int(0)
        }
    }

    /// Every chunk and the path of the pack holding it (for comparing indexes).
    public func chunkPacks() throws -> [ChunkID: String] {
        let s = try db.statement("SELECT c.id, o.path FROM chunks c JOIN objects o ON o.id = c.pack")
        var out: [ChunkID: String] = [:]
        while try s.step() { if let id = Digest(bytes: s.blob(0)) { out[id] = s.text(1) } }
        return out
    }

    // MARK: Objects

    public struct StoredObject: Sendable {
        public var id: Int
        public var path: String
        public var kind: String
        public var size: Int
        public var sha256: Digest
        public var spool: String?
    }

    /// Records an object stored on `mirrors` (at least one), with its spool
    /// copy if some configured mirror still lacks it; in the caller's transaction.
    @discardableResult
    package func recordObject(path: String, kind: String, size: Int, sha256: Digest, now: Int,
                      deliveredTo mirrors: [Int], spool: String?) throws -> Int {
        let s = try db.statement("""
            INSERT INTO objects(path, kind, size, sha256, created, last_referenced, spool) VALUES (?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT(path) DO UPDATE SET spool = excluded.spool RETURNING id
            """)
        s.bind(1, path); s.bind(2, kind); s.bind(3, size); s.bind(4, sha256.bytes); s.bind(5, now); s.bind(6, now)
        if let spool { s.bind(7, spool) } else { s.bindNull(7) }
        guard try s.step() else { throw StoreError(.index, "cannot record \(path)") }
        let id = s.int(0)
        try s.run()
        for m in mirrors { try markDelivered(object: id, mirror: m) }
        return id
    }

    public func hasObject(path: String) throws -> Bool {
        let s = try db.statement("SELECT 1 FROM objects WHERE path = ?")
        s.bind(1, path)
        return try s.step()
    }

    package func markDelivered(object: Int, mirror: Int) throws {
        let d = try db.statement("INSERT OR IGNORE INTO delivered(object, mirror) VALUES (?, ?)")
        d.bind(1, object); d.bind(2, mirror)
        try d.run()
        let a = try db.statement("DELETE FROM abandoned WHERE object = ? AND mirror = ?")
        a.bind(1, object); a.bind(2, mirror)
        try a.run()
    }

    package func addChunk(_ id: ChunkID, pack: Int, kind: ChunkKind, plainLength: Int) throws {
        let s = try db.statement("INSERT OR IGNORE INTO chunks(id, pack, kind, plain_length) VALUES (?, ?, ?, ?)")
        s.bind(1, id.bytes); s.bind(2, pack); s.bind(3, Int(kind.rawValue)); s.bind(4, plainLength)
        try s.run()
    }

    /// Objects with a spool copy, with the mirrors (IDs) that lack them.
    package func owedObjects(mirrors: [Int]) throws -> [(StoredObject, missing: [Int])] {
        let s = try db.statement("SELECT id, path, kind, size, sha256, spool FROM objects WHERE spool IS NOT NULL ORDER BY id")
        var result: [(StoredObject, [Int])] = []
        var rows: [StoredObject] = []
        while try s.step() {
            rows.append(StoredObject(id: s.int(0), path: s.text(1), kind: s.text(2), size: s.int(3),
                                     sha256: Digest(bytes: s.blob(4))!, spool: s.text(5)))
        }
        for o in rows {
            let missing = try mirrors.filter { m in try !isDelivered(object: o.id, mirror: m) }
            result.append((o, missing))
        }
        return result
    }

    func isDelivered(object: Int, mirror: Int) throws -> Bool {
        let s = try db.statement("SELECT 1 FROM delivered WHERE object = ? AND mirror = ?")
        s.bind(1, object); s.bind(2, mirror)
        return try s.step()
    }

    package func clearSpool(object: Int) throws {
        let s = try db.statement("UPDATE objects SET spool = NULL WHERE id = ?")
        s.bind(1, object)
        try s.run()
    }

    package func abandon(object: Int, mirror: Int) throws {
        let s = try db.statement("INSERT OR IGNORE INTO abandoned(object, mirror) VALUES (?, ?)")
        s.bind(1, object); s.bind(2, mirror)
        try s.run()
    }

    /// Total bytes held in the spool.
    package func spoolBytes() throws -> Int {
        let s = try db.statement("SELECT coalesce(sum(size), 0) FROM objects WHERE spool IS NOT NULL")
        try s.step()
        return s.int(0)
    }

    /// Spool files the index knows, for cleaning up strays.
    package func spoolFiles() throws -> Set<String> {
        let s = try db.statement("SELECT spool FROM objects WHERE spool IS NOT NULL")
        var out = Set<String>()
        while try s.step() { out.insert(s.text(0)) }
        return out
    }

    package func object(id: Int) throws -> StoredObject? {
        let s = try db.statement("SELECT id, path, kind, size, sha256, spool FROM objects WHERE id = ?")
        s.bind(1, id)
        guard try s.step() else { return nil }
        return StoredObject(id: s.int(0), path: s.text(1), kind: s.text(2), size: s.int(3),
                            sha256: Digest(bytes: s.blob(4))!, spool: s.isNull(5) ? nil : s.text(5))
    }

    /// How many of `objects` each mirror lacks.
    package func missingCounts(objects: Set<Int>, mirrors: [Int]) throws -> [Int: Int] {
        var out: [Int: Int] = [:]
        for m in mirrors {
            var missing = 0
            for o in objects where try !isDelivered(object: o, mirror: m) { missing += 1 }
            out[m] = missing
        }
        return out
    }

    package func touch(objects: Set<Int>, at now: Int) throws {
        for o in objects {
            let s = try db.statement("UPDATE objects SET last_referenced = ? WHERE id = ?")
            s.bind(1, now); s.bind(2, o)
            try s.run()
        }
    }

    // MARK: Snapshots

    package func recordSnapshot(id: String, started: Int, finished: Int, root: ChunkID, record: Int, catalog: Int, summary: String,
                        replacing: Bool = true) throws {
        let s = try replacing
            ? db.statement("INSERT INTO snapshots(id, started, finished, root, record, catalog, summary) VALUES (?, ?, ?, ?, ?, ?, ?)")
            : db.statement("INSERT OR IGNORE INTO snapshots(id, started, finished, root, record, catalog, summary) VALUES (?, ?, ?, ?, ?, ?, ?)")
        s.bind(1, id); s.bind(2, started); s.bind(3, finished); s.bind(4, root.bytes)
        s.bind(5, record); s.bind(6, catalog); s.bind(7, summary)
        try s.run()
    }

    /// What the newest recorded snapshot scanned (from its summary), the
    /// likely total of the next run; nil without one.
    package func lastSnapshotBytesScanned() throws -> UInt64? {
        let s = try db.statement("SELECT summary FROM snapshots ORDER BY finished DESC LIMIT 1")
        guard try s.step() else { return nil }
        let json = try? JSONSerialization.jsonObject(with: Data(s.text(0).utf8)) as? [String: Any]
        _ = try s.step()
        return (json?["bytes_scanned"] as? NSNumber).map { $0.uint64Value }
    }

    public var snapshotIDs: [String] {
        get throws {
            let s = try db.statement("SELECT id FROM snapshots ORDER BY started")
            var out: [String] = []
            while try s.step() { out.append(s.text(0)) }
            return out
        }
    }

    // MARK: Files cache

    public struct CachedFile: Sendable {
        public var dev: UInt64, ino: UInt64, size: UInt64, mtime: Int64, ctime: Int64
        /// As the tree format lays them out: an unchanged file's go into its
        /// tree entry without being decoded.
        package var regions: EncodedRegions
        /// The packs (object IDs) holding the file's chunks, so an unchanged
        /// file costs no chunk lookups. Nil in rows written before they were kept.
        public var packs: [Int]? = nil
        /// The file's extended attributes, read after the stat giving this
        /// row's ctime: setting or removing one changes the ctime, so an
        /// unchanged file costs no xattr calls. Nil in rows written before
        /// they were kept.
        public var xattrs: [(name: [UInt8], value: [UInt8])]? = nil

        package init(dev: UInt64, ino: UInt64, size: UInt64, mtime: Int64, ctime: Int64, regions: EncodedRegions,
                     packs: [Int]? = nil, xattrs: [(name: [UInt8], value: [UInt8])]? = nil) {
            (self.dev, self.ino, self.size, self.mtime, self.ctime) = (dev, ino, size, mtime, ctime)
            (self.regions, self.packs, self.xattrs) = (regions, packs, xattrs)
        }
    }

    /// The files cache's rows for `paths`, which must be in ascending byte
    /// order (a directory's entries are): one range scan for a batch where
    /// one lookup per path cost more than the stats of a no-change run.
    package func cachedFiles(paths: [[UInt8]]) throws -> [CachedFile?] {
        var out = [CachedFile?](repeating: nil, count: paths.count)
        var i = 0
        while i < paths.count {
            let s = try db.statement("SELECT path, dev, ino, size, mtime, ctime, regions FROM files WHERE path >= ? AND path <= ? ORDER BY path")
            s.bind(1, paths[i])
            s.bind(2, paths[paths.count - 1])
            // Rows of other paths in the range (files below a subdirectory
            // of the batch) are passed over; after a run of them the scan
            // seeks to the next wanted path instead.
            var passed = 0
            while passed < 32 {
                guard try s.step() else { return out }
                while i < paths.count && s.compareBlob(0, paths[i]) > 0 { i += 1 }
                guard i < paths.count else { return out }
                guard s.compareBlob(0, paths[i]) == 0 else {
                    passed += 1
                    continue
                }
                passed = 0
                if let (regions, packs, xattrs) = try? FilesCacheCodec.decode(s.blob(6), fileSize: UInt64(s.int(3))) {
                    out[i] = CachedFile(dev: UInt64(bitPattern: Int64(s.int(1))), ino: UInt64(bitPattern: Int64(s.int(2))),
                                        size: UInt64(s.int(3)), mtime: Int64(s.int(4)), ctime: Int64(s.int(5)),
                                        regions: regions, packs: packs, xattrs: xattrs)
                }
                i += 1
            }
        }
        return out
    }

    package func cacheFile(path: [UInt8], _ f: CachedFile) throws {
        let s = try db.statement("INSERT OR REPLACE INTO files(path, dev, ino, size, mtime, ctime, regions) VALUES (?, ?, ?, ?, ?, ?, ?)")
        s.bind(1, path); s.bind(2, Int64(bitPattern: f.dev)); s.bind(3, Int64(bitPattern: f.ino)); s.bind(4, Int(f.size))
        s.bind(5, f.mtime); s.bind(6, f.ctime); s.bind(7, FilesCacheCodec.encode(f.regions, packs: f.packs, xattrs: f.xattrs))
        try s.run()
    }

    package func transaction<R>(_ body: () throws -> R) throws -> R { try db.transaction(body) }
}

/// The files cache's regions column: the tree format's region encoding;
/// then the packs holding the chunks: count (LE32) and object IDs (LE64);
/// then the extended attributes, as in a tree entry. Older rows end after
/// the regions or after the packs.
enum FilesCacheCodec {
    static func encode(_ regions: EncodedRegions, packs: [Int]?, xattrs: [(name: [UInt8], value: [UInt8])]? = nil) -> [UInt8] {
        var w = ByteWriter()
        w.raw(regions.bytes)
        guard let packs else { return w.bytes }
        w.u32(packs.count)
        for p in packs { w.u64(UInt64(p)) }
        if let xattrs { TreeFormat.write(xattrs, to: &w) }
        return w.bytes
    }

    static func decode(_ bytes: [UInt8], fileSize: UInt64) throws(FormatError)
        -> (regions: EncodedRegions, packs: [Int]?, xattrs: [(name: [UInt8], value: [UInt8])]?) {
        var r = ByteReader(bytes, object: "files cache entry")
        let regions = try EncodedRegions(&r, fileSize: fileSize)
        guard r.remaining > 0 else { return (regions, nil, nil) }
        let count = try r.u32("pack count")
        guard count <= r.remaining / 8 else { throw r.fail("pack count \(count) does not fit the entry") }
        var packs: [Int] = []
        packs.reserveCapacity(count)
        for _ in 0..<count {
            guard let p = Int(exactly: try r.u64("pack")) else { throw r.fail("pack ID out of range") }
            packs.append(p)
        }
        guard r.remaining > 0 else { return (regions, packs, nil) }
        let xattrs = try TreeFormat.readXattrs(&r)
        guard r.remaining == 0 else { throw r.fail("\(r.remaining) bytes after the extended attributes") }
        return (regions, packs, xattrs)
    }
}
