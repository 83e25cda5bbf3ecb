// Creating a restore's directories and empty files on a thread of its own
// while the restoring thread walks the snapshot's trees into the plan.
//
// The walk is the restoring thread's work (decoding trees, writing plan
// rows) and creating 30,000 inodes is the kernel's; one after the other
// they were two single-threaded phases of about 1 and 2 s in a 1x
// benchmark restore while the other core idled. Entries arrive here in
// walk order, so a directory is always made before anything in it. What
// cannot be created is reported back once `finish` returns, and the
// restoring thread records it (a file that cannot be created is damaged).
// A walk that fails (forged trees) cancels it, and the restore removes
// what it had created before any data was written.
// Creating files beside the data writers instead was measured no faster
// (ext4 serializes inode allocation against the writes); beside the walk
// the two share nothing.

import Glibc
import Platform

final class EntryCreator: @unchecked Sendable {
    struct Failure {
        /// The file's plan node; nil for a directory.
        let file: Int?
        let path: [UInt8]
        let message: String
    }

    private struct Entry {
        /// The file's plan node; nil for a directory.
        let file: Int?
        /// Relative to the restore root.
        let path: [UInt8]
        let size: UInt64
    }

    private let root: [UInt8]
    /// Batches of entries, so that a wake-up serves many.
    private let queue = WorkQueue<[Entry]>(capacity: 64)
    private var batch: [Entry] = []
    private static let batchSize = 256
    private let condition = Condition()
    // Guarded by `condition`:
    private var failures: [Failure] = []
    private var running = true

    /// Starts the thread.
    /// - Parameter root: the directory entries are created in (it exists).
    init(root: String) {
        self.root = Array(root.utf8) + [UInt8(ascii: "/")]
        Threads.start(name: "fbk-create") { [self] in
            while let entries = queue.pop() {
                queue.release(1)
                for e in entries { create(e) }
            }
            condition.withLock {
                running = false
                condition.broadcast()
            }
        }
    }

    /// Queues a directory (mode 0700 until its metadata is applied last).
    func directory(_ path: [UInt8]) { add(Entry(file: nil, path: path, size: 0)) }

    /// Queues an empty file of `size` bytes (a hole until written; mode 0600).
    func file(_ node: Int, _ path: [UInt8], size: UInt64) { add(Entry(file: node, path: path, size: size)) }

    private func add(_ entry: Entry) {
        batch.append(entry)
        if batch.count >= Self.batchSize { flush() }
    }

    private func flush() {
        guard !batch.isEmpty else { return }
        let entries = batch
        batch = []
        queue.push(cost: 1) { entries }
    }

    /// Waits until everything queued is created.
    /// - Returns: what could not be created.
    func finish() -> [Failure] {
        flush()
        queue.close()
        return condition.withLock {
            while running { condition.wait() }
            return failures
        }
    }

    /// Drops what is queued and lets the thread end (a restore that failed).
    func stop() { queue.stop() }

    /// Drops what is queued and waits until the thread has ended, so that
    /// nothing more is created.
    func cancel() {
        queue.stop()
        condition.withLock { while running { condition.wait() } }
    }

    private func create(_ e: Entry) {
        let full = root + e.path
        guard let node = e.file else {
            if full.withAtPath({ mkdirat($0, $1, 0o700) }) != 0 && errno != EEXIST {
                fail(nil, e.path, "cannot create directory: \(FileSystem.errnoText())")
            }
            return
        }
        let fd = full.withAtPath { openat($0, $1, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600) }
        guard fd >= 0 else { return fail(node, e.path, "cannot create: \(FileSystem.errnoText())") }
        // Full length now: whatever no region covers stays a hole.
        if ftruncate(fd, off_t(e.size)) != 0 {
            fail(node, e.path, "cannot make it \(e.size) bytes long: \(FileSystem.errnoText())")
        }
        close(fd)
    }

    private func fail(_ file: Int?, _ path: [UInt8], _ message: String) {
        condition.withLock { failures.append(Failure(file: file, path: path, message: message)) }
    }
}
