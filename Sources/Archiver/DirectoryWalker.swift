// Lists and stats directories ahead of the archiving thread.
//
// A snapshot walks depth first, a directory's entries in name order, in
// batches (`DirectoryBatches`). Inside a directory taken whole, which
// entries are inspected and which subdirectories are entered depend only
// on the entries' stat and the configuration (`WalkRules`), so a thread of
// its own can walk the same order ahead: while the archiving thread looks
// up the files cache and builds trees for one batch, the walker reads the
// next directories' entries, their stat, and the extended attributes of
// those that are not regular files (a regular file's may be in the files
// cache, which the archiving thread reads). At most `lookahead` entries
// wait between the two.

internal import CLinux
import FoundationEssentials
import Glibc
import Index
import Platform
import Chunker
import Seal

/// What decides, for the walker and the archiver alike, which entries of a
/// directory taken whole are archived and which subdirectories are entered.
struct WalkRules: Sendable {
    /// User exclude patterns (fnmatch).
    let excludes: [String]
    /// Built-in excludes: recorded as empty directories, not entered.
    let builtIn: Set<PathBytes>
    /// The configured paths, normalized: always archived and entered, and
    /// with `oneFilesystem` each keeps below it to its own filesystem.
    let configured: Set<PathBytes>
    let oneFilesystem: Bool
    /// Directories whose contents are left out because of an entry in them.
    let markers: DirectoryMarkers?
    /// Regular files larger than this are left out.
    let largerThan: Int?

    init(excludes: [String], builtIn: [String], configured: [String], oneFilesystem: Bool,
         markers: DirectoryMarkers? = nil, largerThan: Int? = nil) {
        self.excludes = excludes
        self.builtIn = Set(builtIn.map { Array($0.utf8) })
        self.configured = Set(configured.map { Self.normalized($0) })
        self.oneFilesystem = oneFilesystem
        self.markers = markers
        self.largerThan = largerThan
    }

    /// A configured path as the walk spells it: `/a/b`, whatever slashes it was written with.
    static func normalized(_ path: String) -> PathBytes {
        Array(("/" + path.split(separator: "/").joined(separator: "/")).utf8)
    }

    /// Whether an entry met while taking a directory whole is left out.
    func skips(_ path: PathBytes) -> Bool { isExcluded(path) && !configured.contains(path) }

    /// Whether a user exclude pattern matches the path.
    func isExcluded(_ path: PathBytes) -> Bool {
        for pattern in excludes {
            let matched = path.withCPath { p in
                pattern.withCString { fnmatch($0, p, 0) == 0 } || (pattern.hasPrefix("/") && path.starts(with: Array((pattern + "/").utf8)))
            }
            if matched { return true }
            // A pattern without a slash also matches the last component.
            if !pattern.contains("/"), let slash = path.lastIndex(of: UInt8(ascii: "/")) {
                let base = Array(path[(slash + 1)...])
                if base.withCPath({ b in pattern.withCString { fnmatch($0, b, 0) == 0 } }) { return true }
            }
        }
        return false
    }

    /// Whether a directory met while taking its parent whole is entered,
    /// or only recorded. `device` is the filesystem the walk keeps to there.
    func enters(_ path: PathBytes, _ st: stat, device: UInt64) -> Bool {
        configured.contains(path)
            || (!builtIn.contains(path) && !(oneFilesystem && UInt64(st.st_dev) != device) && !(markers?.marks(path) ?? false))
    }

    /// Whether a regular file is left out for its size.
    func isTooLarge(_ st: stat) -> Bool { largerThan.map { Int(st.st_size) > $0 } ?? false }

    /// The filesystem a directory's subtree keeps to: its own if it is a
    /// configured path, else its parent's.
    func device(of path: PathBytes, _ st: stat, parent: UInt64) -> UInt64 {
        configured.contains(path) ? UInt64(st.st_dev) : parent
    }
}

/// `exclude_caches` and `exclude_if_present`: a directory holding a valid
/// CACHEDIR.TAG, or an entry of one of the given names, is recorded empty.
/// The walker and the archiver each ask once about every directory they
/// meet; the first answer is kept for the second, so an entry made or
/// removed between the two cannot set them apart.
final class DirectoryMarkers: @unchecked Sendable {
    static let cacheSignature = Array("Signature: 8a477f597d28d172789f06886806bc55".utf8)
    let names: [String]
    let caches: Bool
    private var answers: [PathBytes: Bool] = [:]
    private let lock = Lock()

    init?(names: [String], caches: Bool) {
        guard !names.isEmpty || caches else { return nil }
        self.names = names
        self.caches = caches
    }

    func marks(_ directory: PathBytes) -> Bool {
        if let known = lock.withLock({ answers.removeValue(forKey: directory) }) { return known }
        let found = look(directory)
        lock.withLock { answers[directory] = found }
        return found
    }

    private func look(_ directory: PathBytes) -> Bool {
        let base = String(decoding: directory, as: UTF8.self) + "/"
        var st = stat()
        for name in names where lstat(base + name, &st) == 0 { return true }
        guard caches, lstat(base + "CACHEDIR.TAG", &st) == 0, st.fileType == S_IFREG else { return false }
        let fd = open(base + "CACHEDIR.TAG", O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var head = [UInt8](repeating: 0, count: Self.cacheSignature.count)
        return read(fd, &head, head.count) == head.count && head == Self.cacheSignature
    }
}

/// A directory entry and what lstat gave; and the extended attributes,
/// unless it is a regular file (`FileSystem.inspect`).
struct ScannedEntry {
    let name: PathBytes
    let path: PathBytes
    let inspected: Result<(stat, FileSystem.Xattrs?), FileSystem.Errno>

    /// The stat, if lstat succeeded.
    var stat: stat? {
        if case .success(let (st, _)) = inspected { return st }
        return nil
    }
}

/// Up to `DirectoryBatches.size` entries of a directory, in name order.
struct ScannedBatch {
    let directory: PathBytes
    let entries: [ScannedEntry]
    /// The directory's last batch (a directory gives at least one).
    let isLast: Bool
    /// Why the directory could not be listed (its only batch is then empty).
    let listingError: FileSystem.Errno?
    /// The wall clock (nanoseconds since 1970) before the entries were
    /// stat'ed: a file changed shortly before is not cached (`FilesCache`).
    let statedAfter: Int64
}

/// A directory's entries, stat'ed a batch at a time.
struct DirectoryBatches {
    static let size = 256

    let directory: PathBytes
    private var names: NameList
    private var listingError: FileSystem.Errno?
    private var next = 0
    private var gaveLast = false

    /// The directory's entries as listed now.
    init(listing directory: PathBytes) {
        self.directory = directory
        switch FileSystem.listDirectory(directory) {
        case .success(let n): names = n
        case .failure(let e): names = NameList(); listingError = e
        }
    }

    /// The given entries of the directory (sorted here), not listed.
    init(directory: PathBytes, names: [PathBytes]) {
        self.directory = directory
        self.names = NameList(names)
    }

    var isFinished: Bool { gaveLast }

    /// The next batch: the entries `skip` does not reject, stat'ed.
    mutating func nextBatch(skipping skip: (_ name: PathBytes, _ path: PathBytes) -> Bool) -> ScannedBatch? {
        guard !gaveLast else { return nil }
        let end = min(next + Self.size, names.count)
        var wanted: [(name: PathBytes, path: PathBytes)] = []
        for i in next..<end {
            let name = names[i]
            let path = directory.appendingComponent(name)
            if !skip(name, path) { wanted.append((name, path)) }
        }
        next = end
        gaveLast = end == names.count
        let statedAfter = FileSystem.wallClock()
        let inspected = FileSystem.inspect(in: directory, wanted)
        return ScannedBatch(directory: directory,
                            entries: zip(wanted, inspected).map { ScannedEntry(name: $0.name, path: $0.path, inspected: $1) },
                            isLast: gaveLast, listingError: listingError, statedAfter: statedAfter)
    }
}

/// Walks a directory taken whole on a thread of its own, in the order the
/// archiver takes it: a batch of a directory, then each subdirectory of
/// that batch it enters (with all below it), then the next batch.
final class DirectoryWalker: @unchecked Sendable {
    private let condition = Condition()
    /// Batches waiting, oldest last in `outgoing` (taken from its end) then
    /// in `incoming` (appended), so neither end moves the others.
    private var incoming: [ScannedBatch] = []
    private var outgoing: [ScannedBatch] = []
    private var queuedEntries = 0
    private var stopping = false
    private var finished = false

    /// Starts walking `root`, which keeps to filesystem `device`.
    init(root: PathBytes, device: UInt64, rules: WalkRules, lookahead: Int = 512) {
        Threads.start(name: "fbk-walk") { [self] in
            walk(root: root, device: device, rules: rules, lookahead: lookahead)
            condition.withLock {
                finished = true
                condition.broadcast()
            }
        }
    }

    private struct Frame {
        var batches: DirectoryBatches
        /// The filesystem the directory's subtree keeps to.
        let device: UInt64
        /// Subdirectories of the last batch given, entered in turn.
        var subdirectories: [(path: PathBytes, device: UInt64)] = []
        var nextSubdirectory = 0
    }

    private func walk(root: PathBytes, device: UInt64, rules: WalkRules, lookahead: Int) {
        var stack = [Frame(batches: DirectoryBatches(listing: root), device: device)]
        while !stack.isEmpty {
            let top = stack.count - 1
            if stack[top].nextSubdirectory < stack[top].subdirectories.count {
                let next = stack[top].subdirectories[stack[top].nextSubdirectory]
                stack[top].nextSubdirectory += 1
                stack.append(Frame(batches: DirectoryBatches(listing: next.path), device: next.device))
                continue
            }
            guard let batch = stack[top].batches.nextBatch(skipping: { rules.skips($1) }) else {
                stack.removeLast()
                continue
            }
            let here = stack[top].device
            stack[top].subdirectories = batch.entries.compactMap { e in
                guard let st = e.stat, st.fileType == S_IFDIR, rules.enters(e.path, st, device: here) else { return nil }
                return (e.path, rules.device(of: e.path, st, parent: here))
            }
            stack[top].nextSubdirectory = 0
            let go = condition.withLock {
                while queuedEntries >= lookahead && !stopping { condition.wait() }
                guard !stopping else { return false }
                incoming.append(batch)
                queuedEntries += batch.entries.count
                condition.broadcast()
                return true
            }
            guard go else { return }
        }
    }

    /// The next batch of the walk (waits for it), which must be of `directory`.
    func next(of directory: PathBytes) throws(StoreError) -> ScannedBatch {
        let batch: ScannedBatch? = condition.withLock {
            while outgoing.isEmpty && incoming.isEmpty && !finished { condition.wait() }
            if outgoing.isEmpty {
                outgoing = incoming.reversed()
                incoming.removeAll(keepingCapacity: true)
            }
            guard let batch = outgoing.popLast() else { return nil }
            queuedEntries -= batch.entries.count
            condition.broadcast()
            return batch
        }
        guard let batch, batch.directory == directory else {
            throw StoreError(.io, "the walk ahead of the archiver lost its place at \(directory.displayPath); run the snapshot again, and report this if it recurs")
        }
        return batch
    }

    /// Stops the walk: the thread ends after the batch it is on, without
    /// being waited for (a stat can hang on a dead network mount, and the
    /// run's error must still be reported).
    func stop() {
        condition.withLock {
            stopping = true
            condition.broadcast()
            incoming.removeAll()
            outgoing.removeAll()
            queuedEntries = 0
        }
    }
}
