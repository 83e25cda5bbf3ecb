// The snapshot pipeline behind the archiving thread. The archiving thread
// walks, reads, chunks, computes chunk IDs and looks them up in the index;
// each new chunk is handed here and the thread goes on reading.
//
//   archiving thread ──chunks──▶ compression workers (one per core)
//        ▲                              │ out of order
//        │                              ▼
//        └──stored packs── uploader ◀── pack writer (in order; seals while
//                         (both mirrors   it writes, straight into the spool)
//                          at once)
//
// Chunks carry a sequence number. The writer puts them into packs in that
// order and the uploader delivers packs in that order, so when a pack is
// stored every chunk numbered up to its last one is stored: the archiving
// thread caches a file once its last chunk is covered (FORMAT.md, "Write
// ordering"). The index is touched by the archiving thread only (or on
// its behalf while it waits: the files-cache lookups of a batch).
//
// Memory: chunk data between the archiving thread and the writer is
// limited to `memory` bytes (the largest chunk always fits); packs are
// sealed as they are written and never held; at most two sealed packs wait
// in the spool for the uploader.

internal import CLinux
import FoundationEssentials
import Glibc
import Seal
import Index
import Format
import Platform
import Chunker

/// A sealed pack in the spool; once the uploader has offered it to the
/// mirrors, `mirrors` says which took it.
struct DeliveredPack {
    /// Name on the mirrors.
    let path: String
    /// Its sealed copy in the spool.
    let spoolFile: String
    let size: Int
    let sha256: Digest
    let entries: [PackEntry]
    /// Mirrors that now hold it (empty: none took it, or not offered yet).
    var mirrors: [MirrorID] = []
    /// The sequence number of its last chunk.
    let lastSequence: Int
}

final class PackPipeline: @unchecked Sendable {
    struct Settings {
        var packSize: Int
        /// Chunk bytes allowed between submission and the pack writer.
        var memory: Int
        var compressionLevel: Int32
        var workers: Int
        var spoolDirectory: String
    }

    private struct Job {
        let sequence: Int
        let id: ChunkID
        let kind: ChunkKind
        let plaintext: [UInt8]
    }

    private struct Compressed {
        let id: ChunkID
        let kind: ChunkKind
        let form: StorageForm
        let stored: [UInt8]
        let plainLength: Int
    }

    /// A pack is sealed at `packSize` bytes or at this many chunks, whichever
    /// comes first. Until its pack is delivered, every file with a chunk in
    /// it waits in the archiving thread's memory (its path, its regions, its
    /// chunk IDs: about 300 bytes), and a 16 MiB pack holds some 16,000
    /// small files, so without a count the memory of a tree of small files
    /// grew with `packSize` (Benchmarks/README.md, "Sixth round").
    static let maximumChunks = 4096

    private let settings: Settings
    private let envelope: Envelope
    private let mirrorSet: MirrorSet
    private let compressors: [ChunkCompressor]

    /// Submitted chunks for the compression workers; the memory of every
    /// chunk not yet written into a pack is reserved in it.
    private let jobs: WorkQueue<Job>

    // Everything below is guarded by `condition`.
    private let condition = Condition()
    /// The pack writer waits here for the next chunk, `flushThrough` or
    /// `stopping`; everyone else waits on `condition` itself, so that a
    /// compressed chunk wakes the writer alone.
    private let writerWork = Condition.WaitPoint()
    private var compressed: [Int: Compressed] = [:]
    /// Sequence number of the next chunk submitted.
    private var nextSequence = 0
    /// Chunks below this number are to be sealed into packs now, even if
    /// the current pack is not full (set by `finish`).
    private var flushThrough = 0
    /// Sealed packs waiting for the uploader.
    private var sealed: [DeliveredPack] = []
    private var delivered: [DeliveredPack] = []
    /// Sequence number after the last chunk of the last delivered pack.
    private var deliveredThrough = 0
    private var failure: (any Error)?
    private var stopping = false
    private var running = 0

    /// Starts the worker, writer and uploader threads.
    /// - Throws: `SealError` for an invalid compression level.
    init(settings: Settings, envelope: Envelope, mirrorSet: MirrorSet) throws {
        var s = settings
        s.workers = max(1, s.workers)
        self.settings = s
        self.envelope = envelope
        self.mirrorSet = mirrorSet
        jobs = WorkQueue(capacity: s.memory)
        compressors = try (0..<s.workers).map { _ in try ChunkCompressor(level: s.compressionLevel) }
        for i in 0..<s.workers { start("compress-\(i)") { $0.compressLoop(worker: i) } }
        start("pack-writer") { $0.writeLoop() }
        start("uploader") { $0.uploadLoop() }
    }

    private func start(_ name: String, _ body: @escaping @Sendable (PackPipeline) -> Void) {
        condition.withLock { running += 1 }
        Threads.start(name: "fbk-\(name)") { [self] in
            body(self)
            condition.withLock {
                running -= 1
                condition.broadcast()
            }
        }
    }

    // MARK: The archiving thread's side

    /// The sequence number the next submitted chunk gets; every chunk
    /// submitted so far has a smaller one.
    var submitted: Int { condition.withLock { nextSequence } }

    /// Hands a new chunk over; waits while the pipeline's memory is full.
    /// - Parameter bytes: the chunk's `length` bytes as an array, asked for
    ///   once there is room (so a chunk copied for the pipeline is copied
    ///   only then, and a waiting chunk holds no extra memory).
    /// - Throws: the error that stopped the pipeline, if one did.
    func submit(id: ChunkID, kind: ChunkKind, length: Int, bytes: () -> [UInt8]) throws {
        // Only the archiving thread submits, so the sequence numbers reach the queue in order.
        let sequence = try condition.withLock {
            if let failure { throw failure }
            return nextSequence
        }
        let queued = jobs.push(cost: length) {
            let plaintext = bytes()
            precondition(plaintext.count == length)
            return Job(sequence: sequence, id: id, kind: kind, plaintext: plaintext)
        }
        try condition.withLock {
            if let failure { throw failure }
            if queued { nextSequence += 1 }
        }
    }

    /// Packs delivered since the last call (without waiting).
    /// - Throws: the error that stopped the pipeline, if one did.
    func takeDelivered() throws -> [DeliveredPack] {
        try condition.withLock { try takeDeliveredLocked() }
    }

    private func takeDeliveredLocked() throws -> [DeliveredPack] {
        if let failure { throw failure }
        defer { delivered.removeAll() }
        return delivered
    }

    /// Seals everything submitted so far, partial pack included, and waits
    /// until the uploader has offered it all to the mirrors.
    /// - Returns: the packs delivered since the last `takeDelivered`.
    func finish() throws -> [DeliveredPack] {
        try condition.withLock {
            flushThrough = nextSequence
            writerWork.signal()
            while failure == nil && deliveredThrough < flushThrough { condition.wait() }
            return try takeDeliveredLocked()
        }
    }

    /// Stops every thread and waits for them; sealed packs the index never
    /// learned of are removed from the spool. Safe to call more than once.
    func shutdown() {
        jobs.stop()
        condition.withLock {
            stopping = true
            condition.broadcast()
            writerWork.broadcast()
            while running > 0 { condition.wait() }
            for file in sealed.map(\.spoolFile) + delivered.map(\.spoolFile) { unlink(file) }
            sealed.removeAll()
            delivered.removeAll()
        }
    }

    private func fail(_ error: any Error) {
        condition.withLock {
            if failure == nil { failure = error }
            stopping = true
            condition.broadcast()
            writerWork.broadcast()
        }
        jobs.stop()
    }

    // MARK: Compression workers

    private func compressLoop(worker: Int) {
        let compressor = compressors[worker]
        while true {
            guard let job = jobs.pop() else { return }
            do {
                let frame = try job.plaintext.withUnsafeBytes { p in
                    Result { () throws(SealError) in try compressor.compressedIfSmaller(p) }
                }.get()
                let result = Compressed(id: job.id, kind: job.kind, form: frame == nil ? .stored : .zstd,
                                        stored: frame ?? job.plaintext, plainLength: job.plaintext.count)
                condition.withLock {
                    compressed[job.sequence] = result
                    writerWork.signal()
                }
            } catch {
                fail(error)
                return
            }
        }
    }

    // MARK: The pack writer

    private func writeLoop() {
        var pack: PackWriter?
        var next = 0
        defer { pack?.abandon() }
        do {
            while true {
                enum Step { case append(Compressed), seal, stop }
                let step: Step = condition.withLock {
                    while true {
                        if stopping { return .stop }
                        if let c = compressed.removeValue(forKey: next) { return .append(c) }
                        // Everything submitted before `finish` is written: seal.
                        if pack != nil && next == flushThrough { return .seal }
                        condition.wait(at: writerWork)
                    }
                }
                switch step {
                case .stop:
                    return
                case .append(let c):
                    if pack == nil { pack = try PackWriter(stream: envelope.sealingStream(to: temporaryPackPath())) }
                    try pack!.append(id: c.id, kind: c.kind, form: c.form, stored: c.stored, plainLength: c.plainLength)
                    jobs.release(c.plainLength)
                    next += 1
                    if pack!.count >= settings.packSize || pack!.chunkCount >= Self.maximumChunks {
                        try seal(pack!, lastSequence: next - 1)
                        pack = nil
                    }
                case .seal:
                    try seal(pack!, lastSequence: next - 1)
                    pack = nil
                }
            }
        } catch let error as StoreError {
            fail(error)
        } catch {
            fail(StoreError(.io, "cannot write a pack into the spool \(settings.spoolDirectory): \(error). "
                + "If its disk is full, free space there: a run needs room for about two packs (pack_size each) "
                + "besides what the spool keeps for a mirror that is behind"))
        }
    }

    private func temporaryPackPath() -> String {
        settings.spoolDirectory + "/pack-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).partial"
    }

    /// Finishes a pack, names it by its hash in the spool and queues it
    /// for the uploader (waiting while two are already queued).
    private func seal(_ pack: PackWriter, lastSequence: Int) throws {
        let temporary = pack.path
        let (entries, size, sha256) = try pack.finish()
        let spoolFile = settings.spoolDirectory + "/\(sha256.hex).pack"
        // The chunks just written were freed on several threads; whole free
        // pages between glibc's live blocks stay resident until trimmed, and
        // small files' chunks leave many.
        _ = malloc_trim(0)
        guard rename(temporary, spoolFile) == 0 else {
            unlink(temporary)
            throw StoreError(.io, "cannot move a sealed pack into the spool \(settings.spoolDirectory): \(FileSystem.errnoText())")
        }
        condition.withLock {
            while sealed.count >= 2 && !stopping { condition.wait() }
            sealed.append(DeliveredPack(path: ObjectName.pack(PackID(sha256: sha256)).path, spoolFile: spoolFile, size: size, sha256: sha256,
                                     entries: entries, lastSequence: lastSequence))
            condition.broadcast()
        }
    }

    // MARK: The uploader

    private func uploadLoop() {
        while true {
            let next: DeliveredPack? = condition.withLock {
                while sealed.isEmpty && !stopping { condition.wait() }
                return stopping ? nil : sealed.first
            }
            guard var pack = next else { return }
            pack.mirrors = mirrorSet.deliver(pack.path, from: pack.spoolFile, size: pack.size)
            condition.withLock {
                sealed.removeFirst()
                delivered.append(pack)
                deliveredThrough = pack.lastSequence + 1
                condition.broadcast()
            }
        }
    }
}
