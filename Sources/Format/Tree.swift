// Trees: one serialized directory, stored as a chunk of kind `tree`
// (FORMAT.md, "Trees"). Names are raw bytes, so non-UTF-8 names round-trip.

import Seal
import Chunker
import Platform

/// The type of a directory entry.
public enum EntryType: UInt8, Sendable, CaseIterable {
    case file = 1, directory = 2, symlink = 3, hardlink = 4, fifo = 5, socket = 6, characterDevice = 7, blockDevice = 8
}

/// A run of file content stored as chunks; gaps between regions are holes.
public struct FileRegion: Equatable, Sendable {
    public var offset: UInt64
    public var length: UInt64
    public var chunks: [ChunkID]

    package init(offset: UInt64, length: UInt64, chunks: [ChunkID]) {
        (self.offset, self.length, self.chunks) = (offset, length, chunks)
    }
}

/// A file's region list as the tree format lays it out, checked but not
/// decoded: an unchanged file's regions go from the files cache into its
/// tree entry as they are, without an array per region.
package struct EncodedRegions {
    package let bytes: ArraySlice<UInt8>

    /// Encodes regions.
    package init(_ regions: [FileRegion]) {
        var w = ByteWriter()
        TreeFormat.write(regions, to: &w)
        bytes = w.bytes[...]
    }

    /// Takes a region list from `r`, checking it as a tree parser does
    /// for a file of `fileSize` bytes.
    package init(_ r: inout ByteReader, fileSize: UInt64) throws(FormatError) {
        let start = r.offset
        try Self.read(&r, fileSize: fileSize, region: nil)
        bytes = r.bytes[start..<r.offset]
    }

    /// The regions.
    package func decode() throws(FormatError) -> [FileRegion] {
        var r = ByteReader(Array(bytes), object: "region list")
        return try Self.decode(&r, fileSize: .max)
    }

    /// Reads, checks and decodes a region list from `r` (a tree parser's
    /// `TreeFormat.readRegions`).
    static func decode(_ r: inout ByteReader, fileSize: UInt64) throws(FormatError) -> [FileRegion] {
        var regions: [FileRegion] = []
        try read(&r, fileSize: fileSize) { offset, length, ids in
            var chunks: [ChunkID] = []
            chunks.reserveCapacity(ids.count / 32)
            for at in stride(from: ids.startIndex, to: ids.endIndex, by: 32) { chunks.append(Digest(bytes: Array(ids[at..<(at + 32)]))!) }
            regions.append(FileRegion(offset: offset, length: length, chunks: chunks))
        }
        return regions
    }

    /// Reads and checks a region list (the layout `TreeFormat.write` makes),
    /// giving `region` each region's offset, length and chunk ID bytes.
    private static func read(_ r: inout ByteReader, fileSize: UInt64,
                             region: ((UInt64, UInt64, ArraySlice<UInt8>) -> Void)?) throws(FormatError) {
        let regionCount = try r.u32("region count")
        guard regionCount <= r.remaining / 20 else { throw r.fail("region count \(regionCount) is implausible") }
        var end: UInt64 = 0
        for _ in 0..<regionCount {
            let offset = try r.u64("region offset"), length = try r.u64("region length")
            let chunkCount = try r.u32("chunk count")
            guard chunkCount <= r.remaining / 32 else { throw r.fail("chunk count \(chunkCount) is implausible") }
            guard offset >= end, length <= fileSize, offset <= fileSize - length else {
                throw r.fail("file regions overlap or extend past the file size")
            }
            end = offset + length
            let ids = try r.take(chunkCount * 32, "chunk IDs")
            region?(offset, length, ids)
        }
    }
}

/// One entry of a directory.
public struct TreeEntry: Equatable, Sendable {
    public var name: [UInt8]
    public var type: EntryType
    public var mode: UInt32
    public var uid: UInt32
    public var gid: UInt32
    public var user: [UInt8]
    public var group: [UInt8]
    public var mtimeNanoseconds: Int64
    public var ctimeNanoseconds: Int64
    public var size: UInt64
    public var xattrs: [(name: [UInt8], value: [UInt8])]
    /// Files: the stored regions, in order.
    public var regions: [FileRegion] = []
    /// Directories: the tree chunk of the directory's contents.
    public var subtree: ChunkID? = nil
    /// Symlinks: the target as stored. Hardlinks: the path (from the
    /// snapshot root, `/`-separated) of the entry that holds the content.
    public var target: [UInt8] = []
    /// Devices: the device number.
    public var rdev: UInt64 = 0

    package init(name: [UInt8], type: EntryType, mode: UInt32, uid: UInt32, gid: UInt32, user: [UInt8], group: [UInt8],
                 mtimeNanoseconds: Int64, ctimeNanoseconds: Int64, size: UInt64, xattrs: [(name: [UInt8], value: [UInt8])],
                 regions: [FileRegion] = [], subtree: ChunkID? = nil, target: [UInt8] = [], rdev: UInt64 = 0) {
        (self.name, self.type, self.mode, self.uid, self.gid, self.user, self.group) = (name, type, mode, uid, gid, user, group)
        (self.mtimeNanoseconds, self.ctimeNanoseconds, self.size, self.xattrs) = (mtimeNanoseconds, ctimeNanoseconds, size, xattrs)
        (self.regions, self.subtree, self.target, self.rdev) = (regions, subtree, target, rdev)
    }

    public static func == (a: TreeEntry, b: TreeEntry) -> Bool {
        a.name == b.name && a.type == b.type && a.mode == b.mode && a.uid == b.uid && a.gid == b.gid
            && a.user == b.user && a.group == b.group && a.mtimeNanoseconds == b.mtimeNanoseconds
            && a.ctimeNanoseconds == b.ctimeNanoseconds && a.size == b.size
            && a.xattrs.map(\.name) == b.xattrs.map(\.name) && a.xattrs.map(\.value) == b.xattrs.map(\.value)
            && a.regions == b.regions && a.subtree == b.subtree && a.target == b.target && a.rdev == b.rdev
    }
}

/// Serializes a directory's entries, arriving in name order, into tree
/// parts of at most `TreeFormat.partSize` bytes as they come: a part holds
/// its entries' bytes, not the entries. A directory that fits one part is
/// one ordinary tree, as it always was; a larger one is its parts plus a
/// tree of parts listing them.
package struct TreePartWriter {
    private var body = ByteWriter()
    private var count = 0
    private var lastName: [UInt8]?
    private var parts: [ChunkID] = []

    package init() {}

    /// Adds an entry; true when the part is full and should be flushed.
    /// - Parameter regions: a file's regions already encoded, written in
    ///   place of the entry's own.
    package mutating func append(_ entry: TreeEntry, regions: EncodedRegions? = nil) -> Bool {
        precondition(lastName.map { $0.lexicographicallyPrecedes(entry.name) } ?? true, "tree entries out of name order")
        lastName = entry.name
        TreeFormat.write(entry, regions: regions, to: &body)
        count += 1
        return body.bytes.count >= TreeFormat.partSize
    }

    /// Stores the entries so far as one part.
    package mutating func flush(_ store: ([UInt8]) throws -> ChunkID) throws {
        guard count > 0 else { return }
        parts.append(try store(tree()))
        body = ByteWriter()
        count = 0
    }

    /// The ID of the directory's tree.
    package mutating func finish(_ store: ([UInt8]) throws -> ChunkID) throws -> ChunkID {
        if parts.isEmpty { return try store(tree()) }
        try flush(store)
        return try store(TreeFormat.serializeParts(parts))
    }

    /// The entries so far as one tree: what `TreeFormat.serialize` writes.
    private func tree() -> [UInt8] {
        var w = ByteWriter()
        w.raw(TreeFormat.magic)
        w.u32(count)
        w.raw(body.bytes)
        return w.bytes
    }
}

public enum TreeFormat {
    static let magic = Array("FBKTREE1".utf8)
    static let partsMagic = Array("FBKTREEP".utf8)
    /// A directory's tree is split into parts of about this many bytes.
    static let partSize = 4 << 20
    /// At most this many parts (a directory of some 500 million entries).
    static let maxParts = 100_000

    /// A tree of parts: the IDs of the trees holding a large directory's
    /// entries, in name order.
    static func serializeParts(_ parts: [ChunkID]) -> [UInt8] {
        var w = ByteWriter()
        w.raw(partsMagic)
        w.u32(parts.count)
        for p in parts { w.raw(p.bytes) }
        return w.bytes
    }

    /// The part IDs of a tree of parts, or nil if `bytes` is an ordinary tree.
    package static func parseParts(_ bytes: [UInt8], name: String = "tree") throws(FormatError) -> [ChunkID]? {
        guard bytes.starts(with: partsMagic) else { return nil }
        var r = ByteReader(bytes, object: name, offset: partsMagic.count)
        let count = try r.u32("part count")
        guard count >= 1, count <= maxParts, r.remaining == count * 32 else {
            throw r.fail("part count \(count) does not match its \(bytes.count) bytes")
        }
        var parts: [ChunkID] = []
        for _ in 0..<count { parts.append(try r.digest("part ID")) }
        return parts
    }
    static let maxEntries = 10_000_000
    static let maxXattrValue = 64 << 10

    /// Serializes entries, sorted by name bytes.
    public static func serialize(_ entries: [TreeEntry]) -> [UInt8] {
        var w = ByteWriter()
        w.raw(magic)
        let sorted = entries.sorted { $0.name.lexicographicallyPrecedes($1.name) }
        w.u32(sorted.count)
        for e in sorted { write(e, to: &w) }
        return w.bytes
    }

    /// One entry alone, as `write` lays it out (a restore plan keeps entries so).
    package static func serializeEntry(_ e: TreeEntry) -> [UInt8] {
        var w = ByteWriter()
        write(e, to: &w)
        return w.bytes
    }

    /// An entry made by `serializeEntry`, checked as any tree's entries are.
    package static func parseEntry(_ bytes: [UInt8]) throws(FormatError) -> TreeEntry {
        var w = ByteWriter()
        w.raw(magic)
        w.u32(1)
        w.raw(bytes)
        return try parse(w.bytes, name: "planned entry")[0]
    }

    /// One entry; a file's regions from `regions` when given.
    static func write(_ e: TreeEntry, regions: EncodedRegions? = nil, to w: inout ByteWriter) {
        w.short(e.name)
        w.u8(e.type.rawValue)
        w.u32(Int(e.mode)); w.u32(Int(e.uid)); w.u32(Int(e.gid))
        w.short(e.user); w.short(e.group)
        w.i64(e.mtimeNanoseconds); w.i64(e.ctimeNanoseconds)
        w.u64(e.size)
        write(e.xattrs, to: &w)
        switch e.type {
        case .file:
            if let regions { w.raw(regions.bytes) } else { write(e.regions, to: &w) }
        case .directory: w.raw(e.subtree!.bytes)
        case .symlink, .hardlink: w.long(e.target)
        case .characterDevice, .blockDevice: w.u64(e.rdev)
        case .fifo, .socket: break
        }
    }

    /// Extended attributes: count (LE16), then per attribute name (short)
    /// || value (long).
    package static func write(_ xattrs: [(name: [UInt8], value: [UInt8])], to w: inout ByteWriter) {
        w.u16(xattrs.count)
        for x in xattrs { w.short(x.name); w.long(x.value) }
    }

    package static func readXattrs(_ r: inout ByteReader) throws(FormatError) -> [(name: [UInt8], value: [UInt8])] {
        let count = try r.u16("xattr count")
        var xattrs: [(name: [UInt8], value: [UInt8])] = []
        for _ in 0..<count {
            xattrs.append((try r.short("xattr name"), try r.long("xattr value", limit: maxXattrValue)))
        }
        return xattrs
    }

    /// Region list: count (LE32), then per region offset (LE64) || length
    /// (LE64) || chunk count (LE32) || chunk IDs.
    static func write(_ regions: [FileRegion], to w: inout ByteWriter) {
        w.u32(regions.count)
        for r in regions {
            w.u64(r.offset); w.u64(r.length); w.u32(r.chunks.count)
            for c in r.chunks { w.raw(c.bytes) }
        }
    }

    static func readRegions(_ r: inout ByteReader, fileSize: UInt64) throws(FormatError) -> [FileRegion] {
        try EncodedRegions.decode(&r, fileSize: fileSize)
    }

    /// Parses a tree, checking every name and length.
    /// - Throws: `FormatError` for anything a correct writer cannot produce,
    ///   including names with `/`, NUL, `.` or `..`, and unsorted or repeated names.
    public static func parse(_ bytes: [UInt8], name: String = "tree") throws(FormatError) -> [TreeEntry] {
        var r = ByteReader(bytes, object: name)
        guard Array(try r.take(8, "magic")) == magic else { throw r.fail("does not start with FBKTREE1") }
        let count = try r.u32("entry count")
        // Each entry takes at least 60 bytes: a count cannot promise more entries than bytes allow.
        guard count <= maxEntries, count <= r.remaining / 60 + 1 else { throw r.fail("entry count \(count) is implausible") }
        var entries: [TreeEntry] = []
        entries.reserveCapacity(count)
        var previous: [UInt8]? = nil
        for _ in 0..<count {
            let entryName = try r.short("name")
            guard !entryName.isEmpty, entryName.count <= 255, !entryName.contains(0), !entryName.contains(UInt8(ascii: "/")),
                  entryName != [UInt8(ascii: ".")], entryName != [UInt8(ascii: "."), UInt8(ascii: ".")] else {
                throw r.fail("entry name \(String(decoding: entryName, as: UTF8.self).debugDescription) is not a plain file name")
            }
            if let previous, !previous.lexicographicallyPrecedes(entryName) {
                throw r.fail("entry names are not sorted and unique")
            }
            previous = entryName
            guard let type = EntryType(rawValue: try r.u8("type")) else { throw r.fail("unknown entry type") }
            var e = TreeEntry(name: entryName, type: type, mode: UInt32(try r.u32("mode")), uid: UInt32(try r.u32("uid")),
                              gid: UInt32(try r.u32("gid")), user: try r.short("user"), group: try r.short("group"),
                              mtimeNanoseconds: try r.i64("mtime"), ctimeNanoseconds: try r.i64("ctime"),
                              size: UInt64(try r.offset("size")), xattrs: try readXattrs(&r))
            switch type {
            case .file: e.regions = try readRegions(&r, fileSize: e.size)
            case .directory: e.subtree = try r.digest("subtree ID")
            case .symlink, .hardlink: e.target = try r.long("target", limit: 65_536)
            case .characterDevice, .blockDevice: e.rdev = try r.u64("device number")
            case .fifo, .socket: break
            }
            entries.append(e)
        }
        guard r.remaining == 0 else { throw r.fail("\(r.remaining) bytes after the last entry") }
        return entries
    }
}
