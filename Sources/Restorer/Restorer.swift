// Restoring a snapshot (or chosen paths of it) into a target directory.
//
// Plan first, then write:
//   1. Walk the trees of the chosen paths into the plan (the work database,
//      on disk, so memory does not grow with the snapshot): every entry to
//      create, and every place a chunk is written, with the chunk's pack.
//   2. Make every directory and an empty, full-length file for every
//      regular file (holes stay holes), on a thread of its own while step 1
//      walks (EntryCreator).
//   3. Take the planned writes sorted by pack; decrypt each pack once (a
//      thread ahead, from step 2 on), let writer threads check each chunk
//      and write it where it belongs, then drop the pack.
//   4. File metadata (on two threads, MetadataPass); hardlinks, FIFOs and
//      devices; then symbolic links, last, so no path ever written through
//      can be a link; then directory metadata deepest first, after their
//      contents.
// Names come from parsed trees (no `/`, `..` or NUL), hardlinks resolve only
// to files of this restore, and nothing is created outside the target.

internal import CLinux
import FoundationEssentials
import Glibc
import Seal
import Format
import Platform

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
    public var version = fbkVersion

    /// `--overwrite`: entries of the target left as they were, replaced, added, removed (`--delete`).
    public var overwrite: [String: Int]?

    enum CodingKeys: String, CodingKey {
        case snapshot, files, directories, links, others, bytes, damaged, warnings, seconds, version, overwrite
        case packsDecrypted = "packs_decrypted"
        case chunksVerified = "chunks_verified"
    }

    public func text() -> String {
        var lines = ["snapshot \(snapshot): \(files) files, \(directories) directories, \(links) links, \(others) other entries, \(bytes) bytes, \(packsDecrypted) packs decrypted, \(String(cFormat: "%.1f", seconds)) s"]
        if let o = overwrite {
            lines.append("over the target: \(o["kept"] ?? 0) left as they were, \(o["replaced"] ?? 0) replaced, \(o["added"] ?? 0) added, \(o["removed"] ?? 0) removed")
        }
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
    /// Where entries are written: the target, or (overwrite) a staging directory inside it.
    private var root: String
    let asRoot = geteuid() == 0
    public var progress: ((Int, UInt64) -> Void)?
    /// For data from a client no longer trusted: device nodes are not
    /// created, and setuid/setgid bits and file capabilities are dropped.
    public var stripPrivileges = false
    /// A directory of the snapshot (`/srv/www`) whose contents go straight
    /// into the target (`restore latest:/srv/www --target /srv/www.restored`);
    /// the paths to restore are then relative to it.
    public var subtree: String?
    /// Restore over what the target holds (OverwriteMerge) instead of into an empty directory.
    public var overwrite = false
    /// With `overwrite`: remove what the target holds below the restored paths and the snapshot lacks.
    public var deleteExtra = false
    /// `subtree`'s components: planned paths are relative to it.
    private var base: [[UInt8]] = []

    /// Tree entries met so far, against the record's `entryBudget`.
    private var entriesWalked = 0
    /// Trees already walked, when only verifying: each distinct tree and
    /// chunk is checked once, however often the snapshot names it, so a
    /// tree bomb whose record claims huge counts verifies in the time its
    /// distinct chunks take.
    private var verifiedTrees = Set<ChunkID>()

    private var summary = RestoreSummary()
    /// Creates planned directories and files as the walk plans them (when writing).
    private var creator: EntryCreator?
    private var plan: RestorePlan { repository.work.plan }
    /// File nodes of the plan that cannot be restored whole (rare: only damage grows it).
    private var damagedFiles = Set<Int>()
    /// Hardlink targets outside the chosen paths, restored once as a copy: target → its file node.
    private var copies: [[UInt8]: Int] = [:]
    /// Owner and group names looked up once each (nil: not known here):
    /// every lookup reads the password or group database again.
    private var userIDs: [[UInt8]: UInt32?] = [:]
    private var groupIDs: [[UInt8]: UInt32?] = [:]

    public init(repository: Repository, snapshot: SnapshotRecord, target: String, write: Bool = true) {
        self.repository = repository
        self.snapshot = snapshot
        self.target = target
        root = target
        self.write = write
        summary.snapshot = snapshot.id.text
    }

    /// Restores `paths` (snapshot-relative, `/`-separated; empty: everything).
    /// - Throws: `StoreError` for problems that stop the whole restore
    ///   (unreadable root, target not empty). Damage to some files is reported in the summary.
    public func run(paths: [String]) throws(StoreError) -> RestoreSummary {
        try StoreError.boundary {
            let started = ContinuousClock.now
            try repository.select(snapshot)
            base = (subtree ?? "").split(separator: "/").map { Array($0.utf8) }
            let start = try startTree()
            try checkRequested(paths)
            if write { try prepareTarget() }
            try plan.clearPlan()
            if write { creator = EntryCreator(root: root) }
            defer { creator?.stop() }
            do {
                try repository.work.batch { try makePlan(paths: paths, from: start) }
            } catch {
                removeCreatedEntries()
                throw error
            }
            // Packs are decrypted on another thread from now on, while the last files are created.
            repository.packs.prefetch(try plan.plannedPacks().filter { !repository.packs.isKnown($0) }, ahead: Self.packsAhead)
            defer { repository.packs.stopPrefetching() }
            try makeFiles()
            try writeData()
            if write { try finish() } else { summary.files = try plan.count(.file) - damagedFiles.count }
            if write && overwrite { try mergeStaged(paths: paths) }
            summary.packsDecrypted = repository.packsDecrypted
            summary.damaged = try damagedFiles.sorted().map { try plan.path(of: $0).displayPath }
            summary.seconds = (ContinuousClock.now - started).seconds
            return summary

        }
    }

    private func prepareTarget() throws {
        var isDir: Bool = false
        if FileManager.default.fileExists(atPath: target, isDirectory: &isDir) {
            guard isDir else { throw StoreError(.config, "restore target \(target) is not a directory") }
            guard overwrite || ((try? FileManager.default.contentsOfDirectory(atPath: target)) ?? []).isEmpty else {
                throw StoreError(.config, "restore target \(target) is not empty; restore into a new or empty directory, or give --overwrite to put the snapshot back over what is there")
            }
        } else {
            try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
        }
        if overwrite {
            // The staging directory, inside the target: on its file system, so every entry moves into place by a rename.
            root = target + "/" + Self.stagingName
            guard mkdir(root, 0o700) == 0 else {
                throw StoreError(.io, "cannot make \(root) for the restore: \(String(cString: strerror(errno))) (a leftover of an earlier restore may be removed)")
            }
        }
    }

    /// The staging directory's name: hidden, and unlikely in any tree.
    static let stagingName = ".fbk-restore-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"

    /// Moves the staged restore into the target (OverwriteMerge).
    private func mergeStaged(paths: [String]) throws {
        let targetFD = open(target, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard targetFD >= 0 else { throw StoreError(.io, "cannot open \(target): \(String(cString: strerror(errno)))") }
        defer { close(targetFD) }
        let stagedFD = openat(targetFD, Self.stagingName, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard stagedFD >= 0 else { throw StoreError(.io, "cannot open the staged restore \(root): \(String(cString: strerror(errno)))") }
        var merge = OverwriteMerge()
        let requested = Set(paths.map { $0.split(separator: "/").joined(separator: "/") }.filter { !$0.isEmpty })
        merge.merge(staged: stagedFD, into: targetFD, relative: "", skip: Self.stagingName, delete: deleteExtra,
                    restored: { path in requested.isEmpty || requested.contains { path == $0 || path.hasPrefix($0 + "/") } })
        close(stagedFD)
        _ = OverwriteMerge.removeTree(targetFD, Self.stagingName)
        summary.warnings += merge.warnings
        summary.overwrite = ["kept": merge.kept, "replaced": merge.replaced, "added": merge.added, "removed": merge.removed]
    }

    // MARK: Plan

    /// The tree the restore starts from, and the trees down to it: the
    /// snapshot's root, or `subtree`'s.
    /// - Throws: `StoreError.config` when `subtree` is missing or no directory.
    private func startTree() throws -> (tree: ChunkID, ancestors: Set<ChunkID>) {
        guard let root = Digest(hex: snapshot.root) else { throw StoreError(.integrity, "snapshot \(snapshot.id) has a malformed root") }
        guard !base.isEmpty else { return (root, [root]) }
        guard let entry = try repository.lookup(snapshot, components: base).entry, entry.type == .directory, let sub = entry.subtree else {
            throw StoreError(.config, "\(subtree!.terminalSafe) is not a directory in snapshot \(snapshot.id); fbk ls -R lists what the snapshot holds")
        }
        return (sub, [root, sub])
    }

    private func makePlan(paths: [String], from start: (tree: ChunkID, ancestors: Set<ChunkID>)) throws {
        let wanted = paths.map { $0.split(separator: "/").map { Array($0.utf8) } }.filter { !$0.isEmpty }
        try walk(tree: start.tree, relative: [], wanted: wanted.isEmpty ? nil : wanted, depth: 0, ancestors: start.ancestors)
        if try plan.count(.hardlink) > 0 { try planHardlinkCopies() }
    }

    /// Every requested path must name an entry: a restore that matched
    /// nothing must not look like one that worked.
    /// - Throws: `StoreError.config` naming the first path that matches
    ///   nothing, with the stored path it likely means.
    private func checkRequested(_ paths: [String]) throws {
        for path in paths where !path.split(separator: "/").isEmpty {
            let missing: Bool
            do throws(StoreError) {
                _ = try repository.lookup(snapshot, components: base + path.split(separator: "/").map { Array($0.utf8) })
                missing = false
            } catch {
                guard error.code == .config else { throw error }
                missing = true
            }
            if missing {
                let relative = path.split(separator: "/").joined(separator: "/")
                let guesses = snapshot.paths.map { $0.split(separator: "/").joined(separator: "/") + "/" + relative }
                    .filter { (try? repository.lookup(snapshot, path: $0).entry) != nil }
                let hint = guesses.first.map { "; did you mean \($0)? (paths are relative to /, as fbk ls shows them)" }
                    ?? "; fbk ls -R lists what the snapshot holds"
                throw StoreError(.config, "no \(relative.terminalSafe) in snapshot \(snapshot.id)\(hint)")
            }
        }
    }

    /// Hardlinks to files outside the chosen paths are restored as copies
    /// (one copy per original; further links to it link to the copy).
    private func planHardlinkCopies() throws {
        try plan.indexPaths()
        var outside: [(node: Int, path: [UInt8], entry: TreeEntry, depth: Int)] = []
        try plan.forEachNode(.hardlink) { node, path, _, depth, bytes in
            let link = try plannedEntry(bytes)
            if try plan.file(at: planned(link.target)) == nil { outside.append((node, path, link, depth)) }
        }
        for link in outside where copies[link.entry.target] == nil {
            try plan.removeNode(link.node)
            guard let original = try? repository.lookup(snapshot, components: link.entry.target.split(separator: UInt8(ascii: "/")).map(Array.init)).entry,
                  original.type == .file else {
                summary.warnings.append("\(link.path.displayPath): hardlink to \(link.entry.target.displayPath), which is not a file of this snapshot; skipped")
                continue
            }
            var copy = original
            copy.name = link.entry.name
            copies[link.entry.target] = try planFile(path: link.path, entry: copy, depth: link.depth)
        }
    }

    /// - Parameter ancestors: the trees on the path from the root to this
    ///   one. A tree that names one of them is a cycle, which no genuine
    ///   snapshot can hold (a tree's ID is the HMAC of its bytes).
    private func walk(tree: ChunkID, relative: [[UInt8]], wanted: [[[UInt8]]]?, depth: Int, ancestors: Set<ChunkID>) throws {
        let entries: [TreeEntry]
        do { entries = try repository.tree(tree) } catch {
            if relative.isEmpty { throw error }
            summary.warnings.append("\(join(relative).displayPath): directory cannot be read: \(error)")
            return
        }
        entriesWalked += entries.count
        guard entriesWalked <= snapshot.entryBudget else {
            throw StoreError(.integrity, "snapshot \(snapshot.id) holds more entries than its signed record states (\(snapshot.entryBudget) with the leading directories): its trees are forged or damaged; nothing more is read")
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
                _ = try plan.addNode(.directory, path: path, depth: depth + 1, entry: below == nil ? TreeFormat.serializeEntry(e) : nil)
                creator?.directory(path)
                if below == nil { summary.directories += 1 }
                if let sub = e.subtree {
                    if !write && !verifiedTrees.insert(sub).inserted { continue }
                    guard !ancestors.contains(sub) else {
                        throw StoreError(.integrity, "\(path.displayPath) in snapshot \(snapshot.id) is its own ancestor (tree \(sub.shortDescription)): the trees are forged")
                    }
                    try walk(tree: sub, relative: components, wanted: below, depth: depth + 1, ancestors: ancestors.union([sub]))
                }
            case .file:
                _ = try planFile(path: path, entry: e, depth: depth + 1)
            case .hardlink:
                guard validLinkTarget(e.target) != nil else {
                    summary.warnings.append("\(path.displayPath): hardlink target \(e.target.displayPath.debugDescription) is not a plain snapshot path; skipped")
                    continue
                }
                _ = try plan.addNode(.hardlink, path: path, depth: depth + 1, entry: TreeFormat.serializeEntry(e))
            case .symlink:
                _ = try plan.addNode(.symlink, path: path, depth: depth + 1, entry: TreeFormat.serializeEntry(e))
            case .fifo, .socket, .characterDevice, .blockDevice:
                _ = try plan.addNode(.special, path: path, depth: depth + 1, entry: TreeFormat.serializeEntry(e))
            }
        }
    }

    /// Plans a file: its entry (without the chunk list) and where each of
    /// its chunks goes. Chunks of a region are consecutive; their lengths
    /// come from the pack listings and must add up to the region's length.
    private func planFile(path: [UInt8], entry e: TreeEntry, depth: Int) throws -> Int {
        var metadata = e
        metadata.regions = []
        let node = try plan.addNode(.file, path: path, depth: depth, size: e.size, entry: TreeFormat.serializeEntry(metadata))
        creator?.file(node, path, size: e.size)
        // Locations first, written to the plan only once every region adds up:
        // a length a listing claims may be wrong, and the packs' own tables then decide.
        var uses: [(pack: Int, chunk: ChunkID, length: Int, offset: UInt64)] = []
        for attempt in 0..<2 {
            uses.removeAll(keepingCapacity: true)
            var problem: String?
            regions: for r in e.regions {
                var offset = r.offset
                for c in r.chunks {
                    guard let location = try repository.chunkLocation(c) else {
                        problem = "no pack holds chunk \(c.shortDescription)"
                        break regions
                    }
                    uses.append((location.pack, c, location.length, offset))
                    offset += UInt64(location.length)
                }
                if offset != r.offset + r.length {
                    problem = "its chunk list does not add up to its regions"
                    break regions
                }
            }
            guard let problem else { break }
            if attempt == 0 && !repository.hasScannedEveryPack {
                try repository.scanEveryPack()
                continue
            }
            markDamaged(node, path: path, StoreError(.integrity, problem))
            return node
        }
        for u in uses { try plan.addUse(pack: u.pack, chunk: u.chunk, length: u.length, file: node, offset: u.offset) }
        return node
    }

    private func plannedEntry(_ bytes: [UInt8]?) throws -> TreeEntry {
        do { return try TreeFormat.parseEntry(bytes ?? []) } catch {
            throw StoreError(.io, "the restore plan holds a damaged entry (\(error)); the temporary directory may be failing")
        }
    }

    /// Where a snapshot path (a hardlink's target) is in the plan, whose
    /// paths are relative to `subtree`; a path outside it gets a form no
    /// planned path has (a leading `/`), so it is found nowhere.
    private func planned(_ snapshotPath: [UInt8]) -> [UInt8] {
        guard !base.isEmpty else { return snapshotPath }
        let prefix = join(base) + [UInt8(ascii: "/")]
        return snapshotPath.starts(with: prefix) ? Array(snapshotPath.dropFirst(prefix.count)) : [UInt8(ascii: "/")] + snapshotPath
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
    private func bytesPath(_ relative: [UInt8]) -> [UInt8] { Array(root.utf8) + [UInt8(ascii: "/")] + relative }

    // MARK: Write

    /// After a walk that failed (a snapshot refused as forged, an unreadable
    /// root), before any data was written: stops the creator and removes
    /// what it made, so the target is left as it was found. The target was
    /// empty, or `root` is this restore's own staging directory.
    private func removeCreatedEntries() {
        guard let creator else { return }
        creator.cancel()
        self.creator = nil
        let fd = open(root, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { return }
        defer { close(fd) }
        // Best effort: the walk's error is what the operator is told.
        for name in OverwriteMerge.names(fd) { _ = OverwriteMerge.removeTree(fd, name) }
    }

    /// Waits for the directories and files the walk queued (EntryCreator)
    /// and records what could not be created: a file so is damaged.
    private func makeFiles() throws {
        guard let creator else { return }
        self.creator = nil
        for failure in creator.finish() {
            if let file = failure.file {
                markDamaged(file, path: failure.path, StoreError(.io, failure.message))
            } else {
                summary.warnings.append("\(failure.path.displayPath): \(failure.message)")
            }
        }
    }

    /// Decrypted packs waiting in the work directory, ahead of the writers.
    static let packsAhead = 2
    /// Chunk data in flight between the restoring thread and the writers.
    static let writerMemory = 8 << 20
    /// Places one job writes a chunk to, at most (a chunk shared by more files is read again).
    static let usesPerJob = 1024

    private func writeData() throws {
        let writers = ChunkWriters(workers: max(1, ProcessInfo.processInfo.activeProcessorCount),
                                   memory: Self.writerMemory, keys: repository.keys, target: write ? root : nil)
        // The pack being dispatched, then those whose chunks are still being written.
        var current: (name: String, opened: Result<OpenedPack, StoreError>)?
        var draining: [String] = []
        var job: ChunkWriters.Job?
        var failed: (chunk: ChunkID, error: StoreError)?

        func dispatch() {
            guard let j = job else { return }
            job = nil
            if !j.uses.isEmpty { writers.submit(j) }
        }
        func mergeDamage() throws {
            for d in writers.takeDamage() {
                if let r = d.retry {
                    try plan.addRetry(.init(chunk: r.chunk, length: r.length, file: d.file, path: d.path, offset: r.offset, error: d.error.message))
                } else {
                    markDamaged(d.file, path: d.path, d.error)
                }
            }
        }
        func releaseDrained() {
            draining.removeAll { pack in
                guard writers.isDone(pack) else { return false }
                repository.packs.release(pack)
                return true
            }
        }
        do {
            try plan.forEachUse { pack, chunk, length, file, path, offset in
                if pack != current?.name {
                    dispatch()
                    if let done = current?.name { draining.append(done) }
                    releaseDrained()
                    try mergeDamage()
                    let totals = writers.totals
                    progress?(totals.chunks, totals.bytes)
                    // A failure is remembered; the chunks below then report it.
                    current = (pack, Result { () throws(StoreError) in try repository.packs.pack(pack) })
                }
                guard !damagedFiles.contains(file) else { return }
                // Not in this pack's copy: looked for again once every pack is done.
                let retry = RestorePlan.Retry(chunk: chunk, length: length, file: file, path: path, offset: offset,
                                               error: failed?.error.message ?? "")
                if let f = failed, f.chunk == chunk {
                    try plan.addRetry(retry)
                    return
                }
                if job?.entry.id != chunk || job!.uses.count >= Self.usesPerJob {
                    dispatch()
                    failed = nil
                    do throws(StoreError) {
                        let opened = try current!.opened.get()
                        guard let entry = opened.entries[chunk], entry.plainLength == length else {
                            throw StoreError(.integrity, "chunk \(chunk.shortDescription) is not in \(pack) although the snapshot lists it there")
                        }
                        guard entry.kind == .data else {
                            throw StoreError(.integrity, "chunk \(chunk.shortDescription) is a tree, not file data")
                        }
                        job = ChunkWriters.Job(pack: pack, packFile: opened.path, entry: entry, uses: [])
                    } catch {
                        failed = (chunk, error)
                        try plan.addRetry(.init(chunk: chunk, length: length, file: file, path: path, offset: offset, error: error.message))
                        return
                    }
                }
                job!.uses.append(ChunkWriters.Use(file: file, path: path, offset: offset))
            }
            dispatch()
        } catch {
            writers.finish()
            throw error
        }
        writers.finish()
        try mergeDamage()
        for pack in draining + [current?.name].compactMap({ $0 }) { repository.packs.release(pack) }
        try retryElsewhere(writers)
        (summary.chunksVerified, summary.bytes) = writers.totals
        progress?(summary.chunksVerified, summary.bytes)
    }

    /// Chunks the plan's pack did not hold intact: every other pack the
    /// listings name for them, and every source's copy, is tried before a
    /// file is called damaged.
    private func retryElsewhere(_ writers: ChunkWriters) throws {
        let handles = FileHandles(capacity: 32)
        defer {
            handles.closeAll()
            repository.releaseAlternative()
        }
        try plan.forEachRetriedChunk { chunk, length, retries in
            let pending = retries.filter { !damagedFiles.contains($0.file) }
            guard !pending.isEmpty else { return }
            var problems = [retries[0].error].filter { !$0.isEmpty }
            guard let found = try repository.chunkFromAlternatives(chunk, length: length, problems: &problems), found.kind == .data else {
                let error = StoreError(.integrity, "chunk \(chunk.shortDescription) is intact in no pack and on no source: \(problems.joined(separator: "; "))")
                for r in pending { markDamaged(r.file, path: r.path, error) }
                return
            }
            let uses = pending.map { ChunkWriters.Use(file: $0.file, path: $0.path, offset: $0.offset) }
            let (written, failures) = writers.write(found.bytes, to: uses, handles: handles)
            writers.account(chunks: 1, bytes: written)
            for f in failures { markDamaged(f.file, path: f.path, f.error) }
        }
    }

    private func markDamaged(_ file: Int, path: [UInt8]? = nil, _ error: Error) {
        if damagedFiles.insert(file).inserted {
            let path = path ?? (try? plan.path(of: file)) ?? []
            summary.warnings.append("\(path.displayPath): \(error)")
        }
    }

    private func finish() throws {
        // Damaged files are removed: a restore never leaves a file that looks whole but is not.
        for node in damagedFiles { _ = bytesPath(try plan.path(of: node)).withAtPath { unlinkat($0, $1, 0) } }
        let files = FileMetadataPass(setter: metadataSetter)
        do {
            try plan.forEachNode(.file) { node, path, _, _, bytes in
                guard !damagedFiles.contains(node) else { return }
                summary.files += 1
                let e = try plannedEntry(bytes)
                files.add(bytesPath(path), e, owner: owner(of: e))
            }
        } catch {
            _ = files.finish()
            throw error
        }
        summary.warnings += files.finish()
        try plan.forEachNode(.hardlink) { _, path, _, _, bytes in
            let link = try plannedEntry(bytes)
            guard let original = try plan.file(at: planned(link.target)) ?? copies[link.target], !damagedFiles.contains(original) else {
                summary.warnings.append("\(path.displayPath): its original \(link.target.displayPath) was not restored; link skipped")
                return
            }
            let originalPath = bytesPath(try plan.path(of: original))
            let ok = originalPath.withAtPath { fromDirectory, from in
                bytesPath(path).withAtPath { toDirectory, to in linkat(fromDirectory, from, toDirectory, to, 0) == 0 }
            }
            if ok { summary.links += 1 } else { summary.warnings.append("\(path.displayPath): cannot link: \(FileSystem.errnoText())") }
        }
        try plan.forEachNode(.special) { _, path, _, _, bytes in
            let e = try plannedEntry(bytes)
            let p = bytesPath(path)
            let mode = mode_t(e.mode & 0o7777)
            let rc: Int32
            switch e.type {
            case .fifo: rc = p.withAtPath { mkfifoat($0, $1, mode) }
            case .characterDevice, .blockDevice:
                guard !stripPrivileges else {
                    summary.warnings.append("\(path.displayPath): device node not restored (--strip-privileges)")
                    return
                }
                guard asRoot else {
                    summary.warnings.append("\(path.displayPath): device not restored (needs root)")
                    return
                }
                rc = p.withAtPath { mknodat($0, $1, (e.type == .characterDevice ? S_IFCHR : S_IFBLK) | mode, dev_t(e.rdev)) }
            default:
                summary.warnings.append("\(path.displayPath): socket not restored (a socket is recreated by its server)")
                return
            }
            if rc == 0 {
                summary.others += 1
                applyMetadata(p, e, isLink: false)
            } else {
                summary.warnings.append("\(path.displayPath): cannot create: \(FileSystem.errnoText())")
            }
        }
        try plan.forEachNode(.symlink) { _, path, _, _, bytes in
            let e = try plannedEntry(bytes)
            let p = bytesPath(path)
            let ok = e.target.withCPath { t in p.withAtPath { symlinkat(t, $0, $1) == 0 } }
            if ok {
                summary.links += 1
                applyMetadata(p, e, isLink: true)
            } else {
                summary.warnings.append("\(path.displayPath): cannot create symbolic link: \(FileSystem.errnoText())")
            }
        }
        try plan.forEachNode(.directory, order: .deepestFirst) { _, path, _, _, bytes in
            if bytes != nil { applyMetadata(bytesPath(path), try plannedEntry(bytes), isLink: false) }
        }
    }

    private var metadataSetter: MetadataSetter { MetadataSetter(asRoot: asRoot, stripPrivileges: stripPrivileges) }

    private func applyMetadata(_ path: [UInt8], _ e: TreeEntry, isLink: Bool) {
        metadataSetter.apply(path, e, owner: owner(of: e), isLink: isLink, warnings: &summary.warnings)
    }

    /// The owner to give an entry: by name when this system knows the name,
    /// else by number (looked up only when restoring as root).
    private func owner(of e: TreeEntry) -> (uid: UInt32, gid: UInt32) {
        guard asRoot else { return (e.uid, e.gid) }
        return (e.user.isEmpty ? e.uid : (lookupUser(e.user) ?? e.uid), e.group.isEmpty ? e.gid : (lookupGroup(e.group) ?? e.gid))
    }

    private func lookupUser(_ name: [UInt8]) -> UInt32? {
        Self.lookUp(name, in: &userIDs) { getpwnam($0).map { $0.pointee.pw_uid } }
    }

    private func lookupGroup(_ name: [UInt8]) -> UInt32? {
        Self.lookUp(name, in: &groupIDs) { getgrnam($0).map { $0.pointee.gr_gid } }
    }

    /// `name`'s ID from `cache`, else from `database` (and then cached, also when unknown).
    private static func lookUp(_ name: [UInt8], in cache: inout [[UInt8]: UInt32?],
                               _ database: (UnsafePointer<CChar>) -> UInt32?) -> UInt32? {
        if let known = cache[name] { return known }
        let id = name.withCPath(database)
        cache[name] = id
        return id
    }
}
