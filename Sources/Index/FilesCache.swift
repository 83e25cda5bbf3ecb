// The files cache: for each file path, the stat fields and the regions
// (and packs, and extended attributes) it had when last stored, so that an
// unchanged file is neither read nor chunked again. Rebuildable: a file
// not in it is only read again.

import Format
import FoundationEssentials
import Glibc
import Platform
import Seal

package final class FilesCache: IndexPartAccess {
    package struct CachedFile: Sendable {
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
    package func cachedFiles(paths: [[UInt8]]) throws(StoreError) -> [CachedFile?] {
        try guarded {
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
    }

    package func cacheFile(path: [UInt8], _ f: CachedFile) throws(StoreError) {
        try guarded {
        let s = try db.statement("INSERT OR REPLACE INTO files(path, dev, ino, size, mtime, ctime, regions) VALUES (?, ?, ?, ?, ?, ?, ?)")
        s.bind(1, path); s.bind(2, Int64(bitPattern: f.dev)); s.bind(3, Int64(bitPattern: f.ino)); s.bind(4, Int(f.size))
        s.bind(5, f.mtime); s.bind(6, f.ctime); s.bind(7, FilesCacheCodec.encode(f.regions, packs: f.packs, xattrs: f.xattrs))
        try s.run()
        }
    }

    /// Empties the cache. Only `Index.forgetPacks` calls it: rows name
    /// packs by ID, and nothing else removes a pack.
    func clear() throws {
        let s = try db.statement("DELETE FROM files")
        try s.run()
    }
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
