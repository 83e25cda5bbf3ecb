// Setting restored entries' owner, mode, extended attributes and times, and
// doing it for the regular files on two threads.
//
// After the data is written, every file gets its metadata (times last, so
// no later write moves them). For 30,000 files that is some 90,000 system
// calls, which ran on the restoring thread alone for about 0.6 s of a 1x
// benchmark restore while the other core idled. The restoring thread reads
// the plan and hands out batches of files; a second thread and the
// restoring thread itself apply them, whichever is free. The pass ends
// before any hardlink or symbolic link is made (see Restorer), so the
// order against those is unchanged; what goes wrong is reported in the
// order the files were planned.

internal import CLinux
import Format
import Glibc
import Platform

/// Sets one entry's metadata: the system calls alone, no state, so any
/// thread may use it.
struct MetadataSetter: Sendable {
    /// Owners are set only when restoring as root.
    let asRoot: Bool
    /// Drops setuid/setgid bits and file capabilities.
    let stripPrivileges: Bool

    /// File capabilities (setcap), dropped with `stripPrivileges`.
    static let capabilityAttribute = Array("security.capability".utf8)

    /// Sets the owner (`owner`, when restoring as root), mode (not for a
    /// symbolic link), extended attributes and times of the entry at
    /// `path`, never following a link at its last component.
    func apply(_ path: [UInt8], _ e: TreeEntry, owner: (uid: UInt32, gid: UInt32), isLink: Bool, warnings: inout [String]) {
        path.withAtPath { directory, p in
            if asRoot && fchownat(directory, p, owner.uid, owner.gid, AT_SYMLINK_NOFOLLOW) != 0 {
                warnings.append("\(path.displayPath): cannot set owner: \(FileSystem.errnoText())")
            }
            let mode = stripPrivileges ? e.mode & 0o1777 : e.mode & 0o7777
            if !isLink && fchmodat(directory, p, mode_t(mode), 0) != 0 {
                warnings.append("\(path.displayPath): cannot set mode: \(FileSystem.errnoText())")
            }
            let t = timespec(tv_sec: Int(e.mtimeNanoseconds / 1_000_000_000), tv_nsec: Int(e.mtimeNanoseconds % 1_000_000_000))
            var times = [t, t]
            path.withShortPath { short in
                for x in e.xattrs where !(stripPrivileges && x.name == Self.capabilityAttribute) {
                    let rc = x.name.withCPath { n in x.value.withUnsafeBytes { lsetxattr(short, n, $0.baseAddress, x.value.count, 0) } }
                    if rc != 0 { warnings.append("\(path.displayPath): cannot set xattr \(x.name.displayPath): \(FileSystem.errnoText())") }
                }
            }
            if utimensat(directory, p, &times, AT_SYMLINK_NOFOLLOW) != 0 {
                warnings.append("\(path.displayPath): cannot set times: \(FileSystem.errnoText())")
            }
        }
    }
}

/// Regular files' metadata on two threads: the caller adds files and
/// applies batches itself whenever one is waiting; a helper thread applies
/// the others. `finish` returns once every file is done.
final class FileMetadataPass: @unchecked Sendable {
    private struct File {
        let path: [UInt8]
        let entry: TreeEntry
        let owner: (uid: UInt32, gid: UInt32)
    }

    private let setter: MetadataSetter
    private static let batchSize = 256
    private var batch: [File] = []
    private var batchCount = 0
    private let condition = Condition()
    // Guarded by `condition`:
    private var waiting: [(index: Int, files: [File])] = []
    private var closed = false
    private var helperRunning = true
    /// Each batch's warnings, by the batch's index.
    private var warnings: [Int: [String]] = [:]

    init(setter: MetadataSetter) {
        self.setter = setter
        Threads.start(name: "fbk-metadata") { [self] in
            while let next = take(waitingForMore: true) { apply(next) }
            condition.withLock {
                helperRunning = false
                condition.broadcast()
            }
        }
    }

    /// Queues a file (restoring thread only).
    func add(_ path: [UInt8], _ entry: TreeEntry, owner: (uid: UInt32, gid: UInt32)) {
        batch.append(File(path: path, entry: entry, owner: owner))
        guard batch.count >= Self.batchSize else { return }
        flush()
        // The restoring thread lends a hand whenever a batch is left over.
        if let leftOver = take(waitingForMore: false, keeping: 1) { apply(leftOver) }
    }

    /// Applies what is left, waits for the helper, and returns every
    /// warning in the order the files were added.
    func finish() -> [String] {
        flush()
        condition.withLock {
            closed = true
            condition.broadcast()
        }
        while let next = take(waitingForMore: false) { apply(next) }
        return condition.withLock {
            while helperRunning { condition.wait() }
            return warnings.keys.sorted().flatMap { warnings[$0]! }
        }
    }

    private func flush() {
        guard !batch.isEmpty else { return }
        let files = batch
        batch = []
        condition.withLock {
            waiting.append((batchCount, files))
            condition.signal()
        }
        batchCount += 1
    }

    /// The oldest waiting batch, when more than `keeping` wait; with
    /// `waitingForMore`, waits for one until the pass is closed.
    private func take(waitingForMore: Bool, keeping: Int = 0) -> (index: Int, files: [File])? {
        condition.withLock {
            while waitingForMore && waiting.isEmpty && !closed { condition.wait() }
            guard waiting.count > keeping else { return nil }
            return waiting.removeFirst()
        }
    }

    private func apply(_ next: (index: Int, files: [File])) {
        var found: [String] = []
        for f in next.files { setter.apply(f.path, f.entry, owner: f.owner, isLink: false, warnings: &found) }
        if !found.isEmpty { condition.withLock { warnings[next.index] = found } }
    }
}
