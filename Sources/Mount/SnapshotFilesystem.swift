// What `fbk mount` shows, independent of FUSE: every snapshot as a
// directory, read from its trees as asked.
//
//     /snapshots/ID/…     each snapshot's tree (paths as `fbk ls` shows them)
//     /latest             a symbolic link to snapshots/ID of the newest
//
// Trees are read through the repository (with the entry budget and cycle
// checks every reader has); a file is read by its chunks, located by the
// selected snapshot's own listings, and only the chunks a read touches are
// fetched (their packs decrypted once, as for a restore). Nothing is
// writable.

import FoundationEssentials
import Glibc
import Format
import Platform
import Restorer
import Seal

package final class SnapshotFilesystem {
    /// What a path is.
    package enum Node {
        case root, snapshotsDirectory, latestLink(String)
        case snapshotRoot(SnapshotRecord)
        case entry(SnapshotRecord, TreeEntry)
    }

    let repository: Repository
    let byID: [String: SnapshotRecord]
    let latest: SnapshotRecord?
    /// Resolved paths and parsed trees, bounded (emptied when full): a walk
    /// of the mount asks about each path several times, and lists a
    /// directory before it asks about each entry.
    private var cache: [String: Node] = [:]
    private var trees: [ChunkID: [TreeEntry]] = [:]
    static let cacheLimit = 16_384
    static let treeLimit = 1024
    /// Per open file: its chunks and where each starts.
    private var open: [UInt64: (snapshot: SnapshotRecord, chunks: [(offset: UInt64, length: Int, id: ChunkID)], size: UInt64)] = [:]
    private var nextHandle: UInt64 = 1
    /// The last chunk read: reads come in pieces of one chunk.
    private var lastChunk: (id: ChunkID, bytes: [UInt8])?

    package init(repository: Repository) {
        self.repository = repository
        byID = Dictionary(repository.snapshots.map { ($0.id.text, $0) }, uniquingKeysWith: { a, _ in a })
        latest = try? repository.snapshot("latest")
    }

    package var snapshotNames: [String] { byID.keys.sorted() }

    /// The node at an absolute path of the mount, or nil (ENOENT).
    package func node(_ path: String) throws(StoreError) -> Node? {
        let parts = path.split(separator: "/").map(String.init)
        switch parts.count {
        case 0: return .root
        case 1 where parts[0] == "snapshots": return .snapshotsDirectory
        case 1 where parts[0] == "latest": return latest.map { .latestLink("snapshots/" + $0.id.text) }
        case 1: return nil
        default:
            guard parts[0] == "snapshots", let s = byID[parts[1]] else { return nil }
            if parts.count == 2 { return .snapshotRoot(s) }
            let key = parts.joined(separator: "/")
            if let known = cache[key] { return known }
            // The parent (resolved the same way, so mostly from the cache), then the name in its tree.
            let parentTree: ChunkID
            switch try node("/" + parts.dropLast().joined(separator: "/")) {
            case .snapshotRoot(let r)?:
                guard let root = Digest(hex: r.root) else { throw StoreError(.integrity, "snapshot \(r.id) has a malformed root") }
                parentTree = root
            case .entry(_, let parent)? where parent.type == .directory && parent.subtree != nil:
                parentTree = parent.subtree!
            default:
                return nil
            }
            let name = Array(parts.last!.utf8)
            guard var entry = try tree(parentTree, of: s).first(where: { $0.name == name }) else { return nil }
            if entry.type == .hardlink {
                // The file it is a link to (a plain snapshot path), under the link's own name.
                let target = entry.target.split(separator: UInt8(ascii: "/")).map(Array.init)
                guard !target.contains(where: { $0 == [46] || $0 == [46, 46] }),
                      var original = try repository.lookup(s, components: target).entry, original.type == .file else { return nil }
                original.name = entry.name
                entry = original
            }
            let n = Node.entry(s, entry)
            if cache.count >= Self.cacheLimit { cache.removeAll(keepingCapacity: true) }
            cache[key] = n
            return n
        }
    }

    /// A tree's entries, parsed once while they are asked about.
    private func tree(_ id: ChunkID, of snapshot: SnapshotRecord) throws(StoreError) -> [TreeEntry] {
        if let known = trees[id] { return known }
        try repository.select(snapshot)
        let entries = try repository.tree(id)
        if trees.count >= Self.treeLimit { trees.removeAll(keepingCapacity: true) }
        trees[id] = entries
        return entries
    }

    /// The names in a directory node.
    package func list(_ node: Node) throws(StoreError) -> [String] {
        switch node {
        case .root: return latest == nil ? ["snapshots"] : ["latest", "snapshots"]
        case .snapshotsDirectory: return snapshotNames
        case .snapshotRoot(let s):
            guard let root = Digest(hex: s.root) else { throw StoreError(.integrity, "snapshot \(s.id) has a malformed root") }
            return try tree(root, of: s).map { String(decoding: $0.name, as: UTF8.self) }
        case .entry(let s, let e):
            guard e.type == .directory, let sub = e.subtree else { return [] }
            return try tree(sub, of: s).map { String(decoding: $0.name, as: UTF8.self) }
        case .latestLink: return []
        }
    }

    /// Opens a file for reading; its handle.
    package func openFile(_ s: SnapshotRecord, _ e: TreeEntry) throws(StoreError) -> UInt64 {
        try repository.select(s)
        var chunks: [(offset: UInt64, length: Int, id: ChunkID)] = []
        for r in e.regions {
            var offset = r.offset
            for c in r.chunks {
                guard let length = try repository.chunkLength(c) else {
                    throw StoreError(.integrity, "no pack holds chunk \(c.shortDescription) of \(String(decoding: e.name, as: UTF8.self).terminalSafe)")
                }
                chunks.append((offset, length, c))
                offset += UInt64(length)
            }
        }
        let handle = nextHandle
        nextHandle += 1
        open[handle] = (s, chunks, e.size)
        return handle
    }

    package func closeFile(_ handle: UInt64) { open[handle] = nil }

    /// Up to `count` bytes at `offset` (holes read as zeros; nothing past the size).
    package func read(_ handle: UInt64, offset: UInt64, count: Int) throws(StoreError) -> [UInt8] {
        guard let file = open[handle], offset < file.size else { return [] }
        let end = min(file.size, offset + UInt64(count))
        var out = [UInt8](repeating: 0, count: Int(end - offset))
        try repository.select(file.snapshot)
        // The first chunk that ends after `offset` (chunks are in offset order).
        var lo = 0, hi = file.chunks.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if file.chunks[mid].offset + UInt64(file.chunks[mid].length) <= offset { lo = mid + 1 } else { hi = mid }
        }
        for c in file.chunks[lo...] where c.offset < end {
            let bytes: [UInt8]
            if let last = lastChunk, last.id == c.id { bytes = last.bytes } else {
                bytes = try repository.chunk(c.id).bytes
                guard bytes.count == c.length else {
                    throw StoreError(.integrity, "chunk \(c.id.shortDescription) is \(bytes.count) bytes, its listing says \(c.length)")
                }
                lastChunk = (c.id, bytes)
            }
            let from = max(offset, c.offset), to = min(end, c.offset + UInt64(c.length))
            guard from < to else { continue }
            out.replaceSubrange(Int(from - offset)..<Int(to - offset), with: bytes[Int(from - c.offset)..<Int(to - c.offset)])
        }
        return out
    }
}
