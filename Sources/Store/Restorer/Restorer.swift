// Restoring a snapshot (or chosen paths of it) into a target directory.
//
// Plan first, then write:
//   1. Walk the trees of the chosen paths and make every directory and an
//      empty, full-length file for every regular file (holes stay holes).
//   2. Group the chunks needed by pack; decrypt each pack once, write its
//      chunks where they belong, then drop it.
//   3. Hardlinks, FIFOs and devices; then symbolic links, last, so no
//      path ever written through can be a link; then file metadata, and
//      directory metadata deepest first, after their contents.
// Names come from parsed trees (no `/`, `..` or NUL), hardlinks resolve only
// to files of this restore, and nothing is created outside the target.

internal import CLinux
import Foundation
import Seal

/// What a restore did.
public struct RestoreSummary: Encodable, Sendable {
    public var snapshot = ""
    public var files = 0
    public var directories = 0
    public var links = 0
    public var others = 0
    public var bytes: UInt64 = 0
    public var packsDecrypted = 0
    public var chunksVerified = 0
    /// Snapshot paths that could not be restored whole (missing or damaged packs); they were removed.
    public var damaged: [String] = []
    public var warnings: [String] = []
    public var seconds = 0.0

    enum CodingKeys: String, CodingKey {
        case snapshot, files, directories, links, others, bytes, damaged, warnings, seconds
        case packsDecrypted = "packs_decrypted"
        case chunksVerified = "chunks_verified"
    }

    public func text() -> String {
        var lines = ["snapshot \(snapshot): \(files) files, \(directories) directories, \(links) links, \(others) other entries, \(bytes) bytes, \(packsDecrypted) packs decrypted, \(String(format: "%.1f", seconds)) s"]
        for d in damaged { lines.append("DAMAGED, not restored: \(d)") }
        for w in warnings.prefix(50) { lines.append("warning: \(w)") }
        return lines.joined(separator: "\n")
    }
}

public final class Restorer {
    let repository: Repository
    let snapshot: SnapshotRecord
    /// Write files (false: only decrypt and check every chunk, as `fbk verify`).
    let write: Bool
    let target: String
    let asRoot = geteuid() == 0
    public var progress: ((Int, UInt64) -> Void)?

    private var summary = RestoreSummary()
    private struct FileJob { var path: [UInt8]; var entry: TreeEntry }
    private var directories: [(path: [UInt8], entry: TreeEntry?, depth: Int)] = []
    private var files: [FileJob] = []
    private var hardlinks: [(path: [UInt8], target: [UInt8], entry: TreeEntry)] = []
    private var specials: [(path: [UInt8], entry: TreeEntry)] = []
    private var symlinks: [(path: [UInt8], entry: TreeEntry)] = []
    /// Snapshot path → index in `files`, for hardlinks.
    private var fileIndex: [[UInt8]: Int] = [:]
    private var damagedFiles = Set<Int>()

    public init(repository: Repository, snapshot: SnapshotRecord, target: String, write: Bool = true) {
        self.repository = repository
        self.snapshot = snapshot
        self.target = target
        self.write = write
        summary.snapshot = snapshot.id
    }

    /// Restores `paths` (snapshot-relative, `/`-separated; empty: everything).
    /// - Throws: `StoreError` for problems that stop the whole restore
    ///   (unreadable root, target not empty). Damage to some files is reported in the summary.
    public func run(paths: [String]) throws -> RestoreSummary {
        let started = ContinuousClock.now
        if write { try prepareTarget() }
        try plan(paths: paths)
        try makeFiles()
        try writeData()
        if write { try finish() }
        summary.packsDecrypted = repository.packsDecrypted
        summary.damaged = damagedFiles.sorted().map { files[$0].path.displayPath }
        summary.seconds = (ContinuousClock.now - started).seconds
        return summary
    }

    private func prepareTarget() throws {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: target, isDirectory: &isDir) {
            guard isDir.boolValue else { throw StoreError(.config, "restore target \(target) is not a directory") }
            guard ((try? FileManager.default.contentsOfDirectory(atPath: target)) ?? []).isEmpty else {
                throw StoreError(.config, "restore target \(target) is not empty; restore into a new or empty directory")
            }
        } else {
            try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
        }
    }

    // MARK: Plan

    private func plan(paths: [String]) throws {
        guard let root = Digest(hex: snapshot.root) else { throw StoreError(.integrity, "snapshot \(snapshot.id) has a malformed root") }
        let wanted = paths.map { $0.split(separator: "/").map { Array($0.utf8) } }.filter { !$0.isEmpty }
        try walk(tree: root, relative: [], wanted: wanted.isEmpty ? nil : wanted, depth: 0)
        // Hardlinks to files outside the chosen paths are restored as copies.
        for (i, link) in hardlinks.enumerated().reversed() where fileIndex[link.target] == nil {
            guard let original = try? repository.lookup(snapshot, components: link.target.split(separator: UInt8(ascii: "/")).map(Array.init)).entry,
                  original.type == .file else {
                summary.warnings.append("\(link.path.displayPath): hardlink to \(link.target.displayPath), which is not a file of this snapshot; skipped")
                hardlinks.remove(at: i)
                continue
            }
            var copy = original
            copy.name = link.entry.name
            fileIndex[link.target] = files.count
            files.append(FileJob(path: link.path, entry: copy))
            hardlinks.remove(at: i)
        }
    }

    private func walk(tree: ChunkID, relative: [[UInt8]], wanted: [[[UInt8]]]?, depth: Int) throws {
        let entries: [TreeEntry]
        do { entries = try repository.tree(tree) } catch {
            if relative.isEmpty { throw error }
            summary.warnings.append("\(join(relative).displayPath): directory cannot be read: \(error)")
            return
        }
        for e in entries {
            let components = relative + [e.name]
            var below: [[[UInt8]]]? = nil
            if let wanted {
                let matching = wanted.filter { $0.first == e.name }
                if matching.isEmpty { continue }
                let rest = matching.map { Array($0.dropFirst()) }
                below = rest.contains(where: { $0.isEmpty }) ? nil : rest
                if below != nil && e.type != .directory { continue }
            }
            let path = join(components)
            switch e.type {
            case .directory:
                directories.append((path, below == nil ? e : nil, depth + 1))
                if below == nil { summary.directories += 1 }
                if let sub = e.subtree { try walk(tree: sub, relative: components, wanted: below, depth: depth + 1) }
            case .file:
                fileIndex[path] = files.count
                files.append(FileJob(path: path, entry: e))
            case .hardlink:
                guard let t = validLinkTarget(e.target) else {
                    summary.warnings.append("\(path.displayPath): hardlink target \(e.target.displayPath.debugDescription) is not a plain snapshot path; skipped")
                    continue
                }
                hardlinks.append((path, t, e))
            case .symlink: symlinks.append((path, e))
            case .fifo, .socket, .characterDevice, .blockDevice: specials.append((path, e))
            }
        }
    }

    /// A hardlink target: plain names separated by `/`, nothing else.
    private func validLinkTarget(_ bytes: [UInt8]) -> [UInt8]? {
        let parts = bytes.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false)
        guard !parts.isEmpty, !parts.contains(where: { $0.isEmpty || $0.elementsEqual([46]) || $0.elementsEqual([46, 46]) || $0.contains(0) }) else { return nil }
        return bytes
    }

    private func join(_ components: [[UInt8]]) -> [UInt8] {
        Array(components.joined(separator: [UInt8(ascii: "/")]))
    }

    /// The restore path of a snapshot path, as bytes (names may not be UTF-8).
    private func bytesPath(_ relative: [UInt8]) -> [UInt8] { Array(target.utf8) + [UInt8(ascii: "/")] + relative }

    // MARK: Write

    private func makeFiles() throws {
        guard write else { return }
        for d in directories {
            let p = bytesPath(d.path)
            if p.withAtPath({ mkdirat($0, $1, 0o700) }) != 0 && errno != EEXIST {
                summary.warnings.append("\(d.path.displayPath): cannot create directory: \(FileSystem.errnoText())")
            }
        }
        for (i, f) in files.enumerated() {
            let fd = bytesPath(f.path).withAtPath { openat($0, $1, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600) }
            guard fd >= 0 else {
                summary.warnings.append("\(f.path.displayPath): cannot create: \(FileSystem.errnoText())")
                damagedFiles.insert(i)
                continue
            }
            // Full length now: whatever no region covers stays a hole.
            if ftruncate(fd, off_t(f.entry.size)) != 0 {
                markDamaged(i, StoreError(.io, "cannot make it \(f.entry.size) bytes long: \(FileSystem.errnoText())"))
            }
            close(fd)
        }
    }

    private func writeData() throws {
        // chunk → the files needing it; grouped by pack so each pack is opened once.
        var targets: [ChunkID: Set<Int>] = [:]
        for (i, f) in files.enumerated() where !damagedFiles.contains(i) {
            for r in f.entry.regions { for c in r.chunks { targets[c, default: []].insert(i) } }
        }
        var byPack: [String: [ChunkID]] = [:]
        for c in targets.keys {
            if let p = repository.packPath(of: c) {
                byPack[p, default: []].append(c)
            } else {
                // Not in any record's listing: the repository opens unlisted packs to find it.
                do { byPack[try repository.packHolding(c), default: []].append(c) } catch {
                    for f in targets[c] ?? [] { markDamaged(f, error) }
                }
            }
        }
        let handles = FileHandles(capacity: 64)
        defer { handles.closeAll() }
        let order = byPack.keys.sorted()
        let prefetched = order.filter { !repository.isDecrypted($0) }
        let prefetcher = PackPrefetcher(repository: repository, packs: prefetched, ahead: 2)
        defer { prefetcher.stop() }
        var nextPrefetched = 0
        for pack in order {
            if nextPrefetched < prefetched.count && prefetched[nextPrefetched] == pack {
                nextPrefetched += 1
                // A failure is remembered; the chunks below then report it.
                try? repository.adopt(pack, prefetcher.take(pack))
            }
            for c in byPack[pack]!.sorted() {
                let needing = (targets[c] ?? []).filter { !damagedFiles.contains($0) }
                if needing.isEmpty { continue }
                let data: [UInt8]
                do {
                    let (kind, bytes) = try repository.chunk(c)
                    guard kind == .data else { throw StoreError(.integrity, "chunk \(c.shortDescription) is a tree, not file data") }
                    data = bytes
                    summary.chunksVerified += 1
                } catch {
                    for f in needing { markDamaged(f, error) }
                    continue
                }
                for f in needing.sorted() {
                    guard let offsets = chunkOffsets(c, file: files[f].entry) else {
                        markDamaged(f, StoreError(.integrity, "its chunk list does not add up to its regions"))
                        continue
                    }
                    summary.bytes += UInt64(data.count * offsets.count)
                    guard write else { continue }
                    guard let fd = handles.fd(for: f, path: bytesPath(files[f].path)) else {
                        markDamaged(f, StoreError(.io, "cannot reopen: \(FileSystem.errnoText())"))
                        continue
                    }
                    for offset in offsets where pwrite(fd, data, data.count, off_t(offset)) != data.count {
                        markDamaged(f, StoreError(.io, "cannot write: \(FileSystem.errnoText())"))
                    }
                }
                progress?(summary.chunksVerified, summary.bytes)
            }
            repository.release(pack: pack)
        }
    }

    /// Where chunk `c` starts in a file (once per occurrence). Chunks of a
    /// region are consecutive; lengths come from the pack listings. Nil if a
    /// length is unknown or a region's chunks do not add up to its length.
    private func chunkOffsets(_ c: ChunkID, file e: TreeEntry) -> [UInt64]? {
        var out: [UInt64] = []
        for r in e.regions {
            var offset = r.offset
            for other in r.chunks {
                if other == c { out.append(offset) }
                guard let l = repository.chunkLength(other) else { return nil }
                offset += UInt64(l)
            }
            guard offset == r.offset + r.length else { return nil }
        }
        return out
    }

    private func markDamaged(_ file: Int, _ error: Error) {
        if !damagedFiles.contains(file) {
            damagedFiles.insert(file)
            summary.warnings.append("\(files[file].path.displayPath): \(error)")
        }
    }

    private func finish() throws {
        // Damaged files are removed: a restore never leaves a file that looks whole but is not.
        for i in damagedFiles { _ = bytesPath(files[i].path).withAtPath { unlinkat($0, $1, 0) } }
        for (i, f) in files.enumerated() where !damagedFiles.contains(i) {
            summary.files += 1
            applyMetadata(bytesPath(f.path), f.entry, isLink: false)
        }
        for h in hardlinks {
            guard let i = fileIndex[h.target], !damagedFiles.contains(i) else {
                summary.warnings.append("\(h.path.displayPath): its original \(h.target.displayPath) was not restored; link skipped")
                continue
            }
            let ok = bytesPath(files[i].path).withAtPath { fromDirectory, from in
                bytesPath(h.path).withAtPath { toDirectory, to in linkat(fromDirectory, from, toDirectory, to, 0) == 0 }
            }
            if ok { summary.links += 1 } else { summary.warnings.append("\(h.path.displayPath): cannot link: \(FileSystem.errnoText())") }
        }
        for s in specials {
            let p = bytesPath(s.path)
            let mode = mode_t(s.entry.mode & 0o7777)
            let rc: Int32
            switch s.entry.type {
            case .fifo: rc = p.withAtPath { mkfifoat($0, $1, mode) }
            case .characterDevice, .blockDevice:
                guard asRoot else {
                    summary.warnings.append("\(s.path.displayPath): device not restored (needs root)")
                    continue
                }
                rc = p.withAtPath { mknodat($0, $1, (s.entry.type == .characterDevice ? S_IFCHR : S_IFBLK) | mode, dev_t(s.entry.rdev)) }
            default:
                summary.warnings.append("\(s.path.displayPath): socket not restored (a socket is recreated by its server)")
                continue
            }
            if rc == 0 {
                summary.others += 1
                applyMetadata(p, s.entry, isLink: false)
            } else {
                summary.warnings.append("\(s.path.displayPath): cannot create: \(FileSystem.errnoText())")
            }
        }
        for l in symlinks {
            let p = bytesPath(l.path)
            let ok = l.entry.target.withCPath { t in p.withAtPath { symlinkat(t, $0, $1) == 0 } }
            if ok {
                summary.links += 1
                applyMetadata(p, l.entry, isLink: true)
            } else {
                summary.warnings.append("\(l.path.displayPath): cannot create symbolic link: \(FileSystem.errnoText())")
            }
        }
        for d in directories.sorted(by: { $0.depth > $1.depth }) {
            if let e = d.entry { applyMetadata(bytesPath(d.path), e, isLink: false) }
        }
    }

    private func applyMetadata(_ path: [UInt8], _ e: TreeEntry, isLink: Bool) {
        path.withAtPath { directory, p in
            if asRoot {
                let uid = e.user.isEmpty ? e.uid : (lookupUser(e.user) ?? e.uid)
                let gid = e.group.isEmpty ? e.gid : (lookupGroup(e.group) ?? e.gid)
                if fchownat(directory, p, uid, gid, AT_SYMLINK_NOFOLLOW) != 0 {
                    summary.warnings.append("\(path.displayPath): cannot set owner: \(FileSystem.errnoText())")
                }
            }
            if !isLink && fchmodat(directory, p, mode_t(e.mode & 0o7777), 0) != 0 {
                summary.warnings.append("\(path.displayPath): cannot set mode: \(FileSystem.errnoText())")
            }
            let t = timespec(tv_sec: Int(e.mtimeNanoseconds / 1_000_000_000), tv_nsec: Int(e.mtimeNanoseconds % 1_000_000_000))
            var times = [t, t]
            path.withShortPath { short in
                for x in e.xattrs {
                    let rc = x.name.withCPath { n in x.value.withUnsafeBytes { lsetxattr(short, n, $0.baseAddress, x.value.count, 0) } }
                    if rc != 0 { summary.warnings.append("\(path.displayPath): cannot set xattr \(x.name.displayPath): \(FileSystem.errnoText())") }
                }
            }
            if utimensat(directory, p, &times, AT_SYMLINK_NOFOLLOW) != 0 {
                summary.warnings.append("\(path.displayPath): cannot set times: \(FileSystem.errnoText())")
            }
        }
    }

    private func lookupUser(_ name: [UInt8]) -> UInt32? {
        name.withCPath { getpwnam($0).map { $0.pointee.pw_uid } }
    }

    private func lookupGroup(_ name: [UInt8]) -> UInt32? {
        name.withCPath { getgrnam($0).map { $0.pointee.gr_gid } }
    }
}

/// A few open files for writing chunks, least recently used closed first.
final class FileHandles {
    private var open_: [Int: Int32] = [:]
    private var order: [Int] = []
    let capacity: Int

    init(capacity: Int) { self.capacity = capacity }

    func fd(for file: Int, path: [UInt8]) -> Int32? {
        if let fd = open_[file] { return fd }
        if open_.count >= capacity, let oldest = order.first {
            order.removeFirst()
            if let fd = open_.removeValue(forKey: oldest) { close(fd) }
        }
        let fd = path.withAtPath { openat($0, $1, O_WRONLY | O_NOFOLLOW | O_CLOEXEC) }
        guard fd >= 0 else { return nil }
        open_[file] = fd
        order.append(file)
        return fd
    }

    func closeAll() {
        for fd in open_.values { close(fd) }
        open_.removeAll()
    }
}
