// Writes chunks into restored files on worker threads. Each worker reads a
// chunk from its decrypted pack, decompresses it, checks it against its ID
// and writes it at every place the plan says (into files created already),
// so these steps use every core while the restoring thread reads the plan
// and another decrypts the next packs. Chunk data in flight is bounded by
// `memory` (the largest chunk always fits).

import FoundationEssentials
import Glibc
import Seal
import Format
import Platform

final class ChunkWriters: @unchecked Sendable {
    /// One place a chunk goes: a file of the plan, its path below the target, an offset.
    struct Use { let file: Int; let path: [UInt8]; let offset: UInt64 }

    /// A chunk to write: where it is (a decrypted pack file) and where it goes.
    struct Job {
        let pack: String
        let packFile: String
        let entry: PackEntry
        var uses: [Use]
    }

    /// A file that could not be written whole. `retry` names the chunk when
    /// the pack copy was at fault (its data may be intact elsewhere); nil
    /// when the restored file itself could not be written.
    struct Damage {
        let file: Int; let path: [UInt8]; let error: StoreError
        var retry: (chunk: ChunkID, length: Int, offset: UInt64)? = nil
    }

    /// Chunks for the workers, their memory reserved until written.
    private let jobs: WorkQueue<Job>
    private let condition = Condition()
    /// Jobs not yet done, by pack: a pack's decrypted file stays until its count is zero.
    private var outstanding: [String: Int] = [:]
    private var damage: [Damage] = []
    private var chunks = 0
    private var bytes: UInt64 = 0
    private var running = 0

    private let keys: ClientKeys
    /// The restore target; nil when only verifying (nothing is written).
    private let target: [UInt8]?

    init(workers: Int, memory: Int, keys: ClientKeys, target: String?) {
        jobs = WorkQueue(capacity: memory)
        self.keys = keys
        self.target = target.map { Array($0.utf8) + [UInt8(ascii: "/")] }
        running = workers
        for n in 0..<workers {
            Threads.start(name: "fbk-write-\(n)") { [self] in work() }
        }
    }

    /// Queues a chunk; waits while the chunk data in flight is at the limit.
    func submit(_ job: Job) {
        condition.withLock { outstanding[job.pack, default: 0] += 1 }
        jobs.push(cost: Self.cost(of: job)) { job }
    }

    /// The memory a job holds while queued and worked on.
    private static func cost(of job: Job) -> Int { job.entry.plainLength + job.entry.storedLength }

    /// Whether every queued chunk of `pack` is written.
    func isDone(_ pack: String) -> Bool { condition.withLock { outstanding[pack] == nil } }

    /// Chunks verified and bytes written so far.
    var totals: (chunks: Int, bytes: UInt64) { condition.withLock { (chunks, bytes) } }

    /// Damage found since the last call.
    func takeDamage() -> [Damage] {
        condition.withLock {
            defer { damage.removeAll() }
            return damage
        }
    }

    /// Waits until every queued chunk is written and stops the workers.
    func finish() {
        jobs.close()
        condition.withLock {
            while running > 0 { condition.wait() }
        }
    }

    private func work() {
        let decompressor = ChunkDecompressor()
        let handles = FileHandles(capacity: 32)
        var pack: (file: String, fd: Int32)?
        defer {
            handles.closeAll()
            if let pack { close(pack.fd) }
            condition.withLock {
                running -= 1
                condition.broadcast()
            }
        }
        while true {
            guard let job = jobs.pop() else { return }
            var found: [Damage] = []
            var written: UInt64 = 0
            var verified = 0
            var read: [UInt8]?
            do throws(StoreError) {
                if pack?.file != job.packFile {
                    if let pack { close(pack.fd) }
                    pack = nil
                    let fd = open(job.packFile, O_RDONLY | O_CLOEXEC)
                    guard fd >= 0 else { throw StoreError(.io, "cannot read the decrypted \(job.pack): \(FileSystem.errnoText())") }
                    pack = (job.packFile, fd)
                }
                read = try Repository.readChunk(job.entry, from: pack!.fd, pack: job.pack, keys: keys, decompressor: decompressor)
            } catch {
                found += job.uses.map {
                    Damage(file: $0.file, path: $0.path, error: error, retry: (job.entry.id, job.entry.plainLength, $0.offset))
                }
            }
            if let data = read {
                verified = 1
                let (n, failures) = write(data, to: job.uses, handles: handles)
                written = n
                found += failures
            }
            jobs.release(Self.cost(of: job))
            condition.withLock {
                if outstanding[job.pack]! == 1 { outstanding[job.pack] = nil } else { outstanding[job.pack]! -= 1 }
                damage += found
                chunks += verified
                bytes += written
                condition.broadcast()
            }
        }
    }

    /// Writes a verified chunk at each of its places (nothing when only
    /// verifying). Also used by the restoring thread for chunks found on a
    /// second look.
    func write(_ data: [UInt8], to uses: [Use], handles: FileHandles) -> (written: UInt64, failures: [Damage]) {
        var written: UInt64 = 0
        var found: [Damage] = []
        for use in uses {
            written += UInt64(data.count)
            guard let target else { continue }
            let fd: Int32
            let path = target + use.path
            switch handles.fd(for: use.file, open: {
                let fd = path.withAtPath { openat($0, $1, O_WRONLY | O_NOFOLLOW | O_CLOEXEC) }
                return fd >= 0 ? .success(fd) : .failure(StoreError(.io, "cannot reopen: \(FileSystem.errnoText())"))
            }) {
            case .success(let opened): fd = opened
            case .failure(let e):
                found.append(Damage(file: use.file, path: use.path, error: e))
                continue
            }
            if pwrite(fd, data, data.count, off_t(use.offset)) != data.count {
                found.append(Damage(file: use.file, path: use.path, error: StoreError(.io, "cannot write: \(FileSystem.errnoText())")))
            }
        }
        return (written, found)
    }

    /// Counts a chunk the restoring thread verified and wrote itself.
    func account(chunks n: Int, bytes b: UInt64) {
        condition.withLock {
            chunks += n
            bytes += b
        }
    }
}

/// A few open files for writing chunks, least recently used closed first.
final class FileHandles {
    private var open_: [Int: Int32] = [:]
    private var order: [Int] = []
    let capacity: Int

    init(capacity: Int) { self.capacity = capacity }

    func fd(for file: Int, open: () -> Result<Int32, StoreError>) -> Result<Int32, StoreError> {
        if let fd = open_[file] { return .success(fd) }
        if open_.count >= capacity, let oldest = order.first {
            order.removeFirst()
            if let fd = open_.removeValue(forKey: oldest) { close(fd) }
        }
        let opened = open()
        if case .success(let fd) = opened {
            open_[file] = fd
            order.append(file)
        }
        return opened
    }

    func closeAll() {
        for fd in open_.values { close(fd) }
        open_.removeAll()
    }
}
