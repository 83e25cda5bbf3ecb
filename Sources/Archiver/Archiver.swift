// The archiver: one `fbk snapshot` run.
//
// Order of work, and why (FORMAT.md, "Write ordering"):
//   1. Deliver what the spool owes to mirrors that missed it last time.
//   2. Walk the configured paths; cut new file content into chunks; skip
//      chunks the index knows; pack, seal and upload new chunks. A pack's
//      chunks enter the index only after the pack is on at least one mirror.
//   3. Upload the sealed snapshot record, then the signed plaintext catalog.
//   4. Record the snapshot in the index only when at least the required
//      number of mirrors hold every object it needs.

import Chunker
internal import CLinux
import FoundationEssentials
import Glibc
import Seal
import Config
import Index
import Backend
import Format
import Platform

/// Runs one snapshot. Not reusable: make one per run.
public final class Archiver {
    let config: ClientConfig
    let keys: ClientKeys
    let envelope: Envelope
    let index: Index
    let mirrorSet: MirrorSet
    let chunker: Chunker
    let names = NameCache()

    /// Called now and then with live counters (from the archiving thread).
    public var progress: ((SnapshotProgress) -> Void)?
    /// Polled between files and chunks; true stops the run cleanly.
    public var isCancelled: () -> Bool = { false }
    /// Back up this process's standard input as `/.fbk-commands/NAME` (`fbk snapshot --stdin NAME`).
    public var stdinSource: String?
    /// The local clock (a test sets it; `WallClock.now` reads FBK_TEST_NOW).
    public var wallClock: () -> Date = WallClock.now

    private var summary = SnapshotSummary()
    /// Packs chunks: compresses, seals and uploads on other threads.
    private var pipeline: PackPipeline?
    /// Chunks handed to the pipeline whose pack is not recorded yet:
    /// deduplicated within the run.
    private var pendingChunks = Set<ChunkID>()
    /// Files read in this run, with the pipeline sequence number below
    /// which all their chunks lie; cached once those chunks are stored.
    private var pendingFiles: [(path: PathBytes, file: FilesCache.CachedFile, through: Int)] = []
    /// Chunks numbered below this are in packs the index records.
    private var storedThrough = 0
    /// Packs (object IDs) the snapshot needs.
    private var neededPacks = Set<Int>()
    /// Packs (object IDs) this run may deduplicate against (FORMAT.md,
    /// "Retention"): needed by a snapshot within the reuse horizon and
    /// sealed to exactly the configured recipients, and the packs this run
    /// stored. A files-cache row naming only these needs no chunk lookups;
    /// a chunk in any other pack is stored again.
    private var reusablePacks = Set<Int>()
    /// Packs this run stored.
    private var neededNew = Set<Int>()
    /// The certificates this run seals to.
    private let recipients: RecipientSet
    /// This run's time (Unix seconds) for the reuse horizon: the latest of
    /// the local clock, the mirrors' clocks and the last run's.
    private var referenceTime = 0
    /// The pack listing of this run, written as its packs are delivered.
    private var listing: PackListingWriter?
    /// First path seen for each multiply-linked inode.
    private var hardlinks: [HardlinkKey: PathBytes] = [:]
    /// Which entries are archived and which directories entered.
    private let rules: WalkRules
    /// Walks ahead inside the directory taken whole being archived.
    private var walker: DirectoryWalker?
    private let clock = ContinuousClock()
    private var started = ContinuousClock.now
    private var lastProgress = ContinuousClock.now
    private var progressCalls = 0
    /// Files are read this much at a time. A chunk is at least the
    /// chunker's minimum (256 KiB by default), so the chunker gathers most
    /// chunks of a large file from several reads whatever this size is; a
    /// larger buffer would only stay resident (Benchmarks/README.md, "Sixth round").
    private var readBuffer = [UInt8](repeating: 0, count: 256 << 10)

    struct HardlinkKey: Hashable { let dev: UInt64, ino: UInt64 }
    /// How far ahead of reading the kernel is asked to fetch a file.
    static let readAhead = 8 << 20

    /// - Throws: `StoreError` (another library's error is its cause).
    public convenience init(config: ClientConfig, keys: ClientKeys, envelope: Envelope, index: Index, mirrors: [any Backend]) throws(StoreError) {
        do {
            try self.init(checking: config, keys: keys, envelope: envelope, index: index, mirrors: mirrors)
        } catch {
            throw StoreError.wrapping(error, as: .underlying)
        }
    }

    private init(checking config: ClientConfig, keys: ClientKeys, envelope: Envelope, index: Index, mirrors: [any Backend]) throws {
        self.config = config
        self.keys = keys
        self.envelope = envelope
        self.index = index
        mirrorSet = MirrorSet(try mirrors.map { MirrorSet.Member(id: try index.ledger.mirrorID($0.location), backend: $0) })
        for m in mirrorSet.members { m.backend.assumeDirectories(try index.ledger.directories(mirror: m.id)) }
        chunker = try Chunker(parameters: config.chunker, seed: keys.chunkerSeed)
        recipients = RecipientSet(envelope.recipients.map(\.fingerprint))
        summary.requiredMirrors = config.requiredMirrors
        rules = WalkRules(excludes: try config.excludePatterns(),
                          builtIn: ["/proc", "/sys", "/dev", "/run", "/tmp", config.state, config.spoolDirectory],
                          configured: config.paths, oneFilesystem: config.oneFilesystem,
                          markers: DirectoryMarkers(names: config.excludeIfPresent, caches: config.excludeCaches),
                          largerThan: config.excludeLargerThan)
    }

    /// Runs the snapshot.
    /// - Returns: the summary; `summary.snapshot` is nil if not enough mirrors hold it.
    /// - Throws: `StoreError` when the run cannot complete (no mirror takes
    ///   the data, local I/O failure, interruption).
    public func run() throws(StoreError) -> SnapshotSummary {
        try StoreError.boundary {
            started = clock.now
            let startDate = wallClock()
            try FileManager.default.createDirectory(atPath: config.spoolDirectory, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
            try removeStraySpoolFiles()
            let spoolNeeds = 2 * config.packSize + (4 << 20)
            if let free = FileSystem.availableBytes(config.spoolDirectory), free < spoolNeeds {
                throw StoreError(.io, "the filesystem holding the spool \(config.spoolDirectory) is full: only \(free) bytes are free, "
                    + "and a run needs at least \(spoolNeeds) (two packs of pack_size and room for the index): free space there and run again")
            }
            try deliverSpool()
            try index.ledger.adoptUnknownRecipients(recipients)
            let cutoff = try reuseWindow()
            reusablePacks = try index.ledger.reusablePacks(since: cutoff, recipients: recipients)
            try startLivenessScan()
            summary.reuseSince = Timestamp.rfc3339(Date(timeIntervalSince1970: TimeInterval(cutoff)))
            try escrowSecret()

            let pipeline = try PackPipeline(
                settings: .init(packSize: config.packSize, memory: config.pipelineMemory,
                                compressionLevel: config.compressionLevel,
                                workers: config.workers > 0 ? config.workers : ProcessInfo.processInfo.activeProcessorCount,
                                spoolDirectory: config.spoolDirectory),
                envelope: envelope, mirrorSet: mirrorSet)
            self.pipeline = pipeline
            defer { pipeline.shutdown() }
            // The pack listing is written as packs are delivered (FORMAT.md 6).
            let id = Timestamp.newSnapshotID(at: startDate)
            let listingFile = try spoolFile(config.spoolDirectory + "/\(id).listing")
            listing = try PackListingWriter(client: config.client, snapshot: id, keys: keys) { try listingFile.write($0) }
            defer { listing = nil }
            let root = try archiveRoot()
            try record(pipeline.finish())
            try commitPendingFiles()
            try checkCancelled()

            let (listingSize, listingSHA) = try listing!.finish(root: root.hex)
            listing = nil
            try listingFile.commit()
            let listingObject = Catalog.Object(path: ObjectName.listing(id).path, size: listingSize, sha256: listingSHA.hex)
            let listingID = try store(file: listingFile.path, as: listingObject.path, kind: .listing, size: listingSize, sha256: listingSHA)

            let finishDate = wallClock()
            let signing = keys.signingKey()
            var stats = SnapshotStats()
            stats.files = summary.files
            stats.directories = summary.directories
            stats.otherEntries = summary.otherEntries
            stats.bytes = summary.bytesScanned
            stats.newChunks = summary.newChunks
            stats.newBytes = summary.newBytes
            stats.packs = summary.packs
            let record = SnapshotRecord(
                id: id, client: config.client, host: config.host ?? ProcessInfo.processInfo.hostName,
                started: Timestamp.rfc3339(startDate), finished: Timestamp.rfc3339(finishDate), paths: config.paths,
                root: root.hex,
                chunker: ChunkerRecord(min: config.chunker.minimumSize, avg: config.chunker.averageSize,
                                       max: config.chunker.maximumSize, window: config.chunker.windowSize),
                stats: stats, signingKey: signing.publicKey.hex, listing: listingObject)
            let recordPath = config.spoolDirectory + "/\(id).snapshot"
            let sealed = try envelope.seal(SignedDocument.encode(record, key: signing), to: recordPath)
            let recordID = try store(file: recordPath, as: ObjectName.record(id).path, kind: .record, size: sealed.size, sha256: sealed.sha256)

            var packObjects: [Catalog.Object] = []
            var addedBytes: UInt64 = 0
            for p in neededPacks.sorted() {
                guard let o = try index.ledger.object(id: p) else { continue }
                packObjects.append(Catalog.Object(path: o.path, size: o.size, sha256: o.sha256.hex))
            }
            packObjects.sort { $0.path < $1.path }
            addedBytes = UInt64(summary.storedBytes)
            let catalog = Catalog(client: config.client, snapshot: id, created: Timestamp.rfc3339(finishDate),
                                  record: Catalog.Object(path: ObjectName.record(id).path, size: sealed.size, sha256: sealed.sha256.hex),
                                  listing: listingObject,
                                  packs: packObjects, addedBytes: addedBytes, signingKey: signing.publicKey.hex,
                                  reuseHorizon: config.reuseHorizon,
                                  recipients: envelope.recipients.map { Catalog.Recipient(fingerprint: $0.fingerprint, issuerSerial: Hex.encode($0.issuerAndSerial)) })
            let catalogBytes = SignedDocument.encode(catalog, key: signing)
            let catalogPath = config.spoolDirectory + "/\(id).catalog"
            try writeFile(catalogPath, catalogBytes)
            let catalogID = try store(file: catalogPath, as: ObjectName.catalog(id).path, kind: .catalog,
                                      size: catalogBytes.count, sha256: SHA256.hash(catalogBytes))

            var needed = neededPacks
            needed.insert(recordID)
            needed.insert(catalogID)
            needed.insert(listingID)
            let missing = try index.ledger.missingCounts(objects: needed, mirrors: mirrorSet.ids)
            let safe = missing.values.filter { $0 == 0 }.count
            summary.safeMirrors = safe
            summary.seconds = (clock.now - started).seconds
            try fillMirrorStates(missing: missing)
            guard safe >= config.requiredMirrors else {
                throw StoreError(.mirrors, notSafeMessage(safe: safe))
            }
            let summaryJSON = summary.json()
            try index.transaction {
                try index.ledger.recordSnapshot(id: id, started: Int(startDate.timeIntervalSince1970),
                                         finished: Int(finishDate.timeIntervalSince1970), root: root,
                                         record: recordID, catalog: catalogID, summary: summaryJSON)
                try index.ledger.touch(objects: needed, at: referenceTime)
                try index.setLastReferenceTime(referenceTime)
            }
            try markPartlyDeadPacks()
            summary.snapshot = id.text
            return summary

        }
    }

    /// The oldest reference (Unix seconds) a pack may have to be reused,
    /// and this run's reference time. Time is the latest of the local
    /// clock and the mirrors' (a board without a real-time clock cannot
    /// stretch the horizon); a clock behind the last run's went backwards,
    /// and then only what the last snapshot needed is reused.
    private func reuseWindow() throws -> Int {
        let local = Int(wallClock().timeIntervalSince1970)
        let servers = mirrorSet.serverTimes().map { Int($0.timeIntervalSince1970 + WallClock.testOffset) }
        referenceTime = max(local, servers.max() ?? local)
        if let last = try index.lastReferenceTime(), referenceTime < last {
            summary.warnings.append("the clock (\(Timestamp.rfc3339(Date(timeIntervalSince1970: TimeInterval(referenceTime))))) is behind the last run's (\(Timestamp.rfc3339(Date(timeIntervalSince1970: TimeInterval(last))))): it went backwards; only packs the last snapshot needed are reused (set the clock right: timedatectl, or ntp)")
            referenceTime = last
            return last
        }
        return referenceTime - config.reuseHorizon
    }

    /// How often the live share of packs is measured.
    static let livenessInterval = 7 * 86_400
    /// While measuring: plain bytes per pack the snapshot uses, and the
    /// chunks counted (by their first 8 bytes; a rare collision counts a
    /// chunk dead, which costs an upload, never data).
    private var liveBytes: [Int: Int]?
    private var liveSeen = Set<UInt64>()

    /// Once a week (`livenessInterval`, by reference time) the run counts
    /// which chunks of which packs its snapshot uses; the first run only
    /// starts the clock.
    private func startLivenessScan() throws {
        guard config.renewBelow > 0, config.renewalBudget > 0 else { return }
        guard let last = try index.lastLivenessScan() else {
            try index.setLastLivenessScan(referenceTime)
            return
        }
        if referenceTime - last >= Self.livenessInterval { liveBytes = [:] }
    }

    /// A chunk the snapshot uses, while measuring.
    private func noteLive(_ id: ChunkID) throws {
        guard liveBytes != nil else { return }
        let key = id.bytes.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
        guard liveSeen.insert(key).inserted, let (pack, length) = try index.chunks.location(of: id),
              reusablePacks.contains(pack) else { return }
        liveBytes![pack, default: 0] += length
    }

    private func noteLive(_ regions: EncodedRegions) throws {
        guard liveBytes != nil else { return }
        for r in try regions.decode() { for c in r.chunks { try noteLive(c) } }
    }

    /// After a measuring run: packs whose share the snapshot still uses
    /// fell below `renew_below` are no longer reused, up to
    /// `renewal_budget` bytes still in use, so their dead bytes become
    /// removable (FORMAT.md 14). Among candidates, the deadest tenth of a
    /// share first, then a per-pack pseudo-random order, so renewals spread
    /// over weeks instead of all falling on one run.
    private func markPartlyDeadPacks() throws {
        guard let live = liveBytes else { return }
        liveBytes = nil
        liveSeen = []
        var candidates: [(id: Int, live: Int, order: (Int, String))] = []
        for (id, total) in try index.ledger.contentBytes(of: reusablePacks) where total > 0 && !neededNew.contains(id) {
            let share = Double(live[id] ?? 0) / Double(total)
            guard share < config.renewBelow, let o = try index.ledger.object(id: id) else { continue }
            candidates.append((id, live[id] ?? 0, (Int(share * 10), SHA256.hash(o.sha256.bytes + keys.secret).hex)))
        }
        candidates.sort { $0.order < $1.order }
        var marked: [Int] = []
        var budget = config.renewalBudget
        for c in candidates where c.live <= budget {
            marked.append(c.id)
            budget -= c.live
            summary.bytesMarkedForRenewal += c.live
        }
        try index.transaction {
            try index.ledger.markForRenewal(marked)
            try index.setLastLivenessScan(referenceTime)
        }
        summary.packsMarkedForRenewal = marked.count
    }

    /// The summary so far (for reporting a failed run).
    public var partialSummary: SnapshotSummary {
        var s = summary
        s.seconds = (clock.now - started).seconds
        try? fillMirrorStates(missing: [:], into: &s)
        return s
    }

    private func notSafeMessage(safe: Int) -> String {
        let reasons = mirrorSet.failures.map { "\($0.mirror): \($0.message)" }
        return "the snapshot is stored completely on \(safe) of \(mirrorSet.ids.count) mirrors, "
            + "\(config.requiredMirrors) required; nothing was recorded as a snapshot. "
            + (reasons.isEmpty ? "" : "Mirror errors: " + reasons.joined(separator: "; "))
    }

    private func fillMirrorStates(missing: [MirrorID: Int]) throws {
        try fillMirrorStates(missing: missing, into: &summary)
    }

    private func fillMirrorStates(missing: [MirrorID: Int], into s: inout SnapshotSummary) throws {
        let owed = try index.ledger.owedObjects(mirrors: mirrorSet.ids)
        let failures = mirrorSet.failures
        s.mirrors = mirrorSet.ids.map { id in
            let url = mirrorSet.url(of: id)
            let uploaded = mirrorSet.uploaded(id)
            return SnapshotSummary.MirrorState(
                url: url, uploadedBytes: uploaded.bytes,
                uploadedObjects: uploaded.objects,
                missingObjects: missing[id] ?? 0,
                spooled: owed.filter { $0.missing.contains(id) }.count,
                error: failures.first { $0.mirror == url }?.message,
                refusing: failures.first { $0.mirror == url }?.misconfigured ?? false)
        }
    }

    // MARK: Objects and the spool

    /// Uploads a finished local object and records it. Keeps the local copy
    /// in the spool while a mirror lacks it.
    /// - Throws: `StoreError.mirrors` if no mirror took it.
    private func store(file: String, as path: String, kind: ObjectKind, size: Int, sha256: Digest,
                       chunks: [PackEntry] = []) throws -> Int {
        try checkCancelled()
        let delivered = mirrorSet.deliver(path, from: file, size: size)
        return try record(file: file, as: path, kind: kind, size: size, sha256: sha256, chunks: chunks, deliveredTo: delivered)
    }

    /// Records an object the mirrors in `delivered` took. Keeps the local
    /// copy in the spool while a mirror lacks it.
    /// - Throws: `StoreError.mirrors` if no mirror took it.
    private func record(file: String, as path: String, kind: ObjectKind, size: Int, sha256: Digest,
                        chunks: [PackEntry], deliveredTo delivered: [MirrorID]) throws -> Int {
        guard !delivered.isEmpty else {
            unlink(file)
            throw StoreError(.mirrors, "no mirror stored \(path): "
                + mirrorSet.failures.map { "\($0.mirror): \($0.message)" }.joined(separator: "; "))
        }
        let complete = delivered.count == mirrorSet.ids.count
        let now = referenceTime > 0 ? referenceTime : Int(wallClock().timeIntervalSince1970)
        let id = try index.transaction {
            // Directories the mirrors were found to have (made, or there already): never asked again.
            for m in mirrorSet.members { try index.ledger.recordDirectories(m.backend.newlyKnownDirectories(), mirror: m.id) }
            let id = try index.ledger.recordObject(path: path, kind: kind, size: size, sha256: sha256, now: now,
                                            deliveredTo: delivered, spool: complete ? nil : PathName.name(file),
                                            sealedTo: kind == .pack || kind == .escrow ? recipients : nil,
                                            contentBytes: kind == .pack ? chunks.reduce(0) { $0 + $1.plainLength } : nil)
            // A chunk stored again (renewal) now names its new pack.
            for e in chunks { try index.chunks.addChunk(e.id, pack: id, kind: e.kind, plainLength: e.plainLength, renewing: true) }
            return id
        }
        if complete {
            unlink(file)
        } else {
            try enforceSpoolLimit()
        }
        return id
    }

    /// Uploads the client secret sealed to the operator's certificates, once:
    /// with it the operator can verify chunk IDs and rebuild a lost client.
    /// After the certificates change, the secret is escrowed again to the
    /// new set under a name of its own (the first escrow is never replaced),
    /// so each key can restore alone.
    private func escrowSecret() throws {
        let known = try index.ledger.escrows(sealedTo: recipients)
        guard !known.matching else { return }
        let name = known.any ? ObjectName.escrow(tag: recipients.tag) : ObjectName.escrow
        let path = config.spoolDirectory + "/" + PathName.name(name.path)
        let sealed = try envelope.seal(Array((Hex.encode(keys.secret) + "\n").utf8), to: path)
        _ = try store(file: path, as: name.path, kind: .escrow, size: sealed.size, sha256: sealed.sha256)
    }

    /// Deletes spool files the index does not know (a crash between sealing and recording).
    private func removeStraySpoolFiles() throws {
        let known = try index.ledger.spoolFiles()
        for name in (try? FileManager.default.contentsOfDirectory(atPath: config.spoolDirectory)) ?? [] where !known.contains(name) {
            unlink(config.spoolDirectory + "/" + name)
        }
    }

    /// Step 1: objects owed to mirrors from earlier runs go first.
    private func deliverSpool() throws {
        for (object, missing) in try index.ledger.owedObjects(mirrors: mirrorSet.ids) {
            try checkCancelled()
            guard let name = object.spool else { continue }
            let spool = config.spoolDirectory + "/" + name
            if !missing.isEmpty {
                guard FileManager.default.fileExists(atPath: spool) else {
                    try index.transaction {
                        for m in missing { try index.ledger.abandon(object: object.id, mirror: m) }
                        try index.ledger.clearSpool(object: object.id)
                    }
                    summary.warnings.append("spool copy of \(object.path) is gone; the mirrors lacking it need fbk mirror-sync")
                    continue
                }
                let delivered = mirrorSet.deliver(object.path, from: spool, size: object.size, to: missing)
                try index.transaction { for m in delivered { try index.ledger.markDelivered(object: object.id, mirror: m) } }
                summary.spoolDelivered += delivered.count
                if delivered.count < missing.count { continue }
            }
            try index.transaction { try index.ledger.clearSpool(object: object.id) }
            unlink(spool)
        }
    }

    /// Keeps the spool under its limit by giving up the oldest copies.
    private func enforceSpoolLimit() throws {
        var total = try index.ledger.spoolBytes()
        guard total > config.spoolLimit else { return }
        for (object, missing) in try index.ledger.owedObjects(mirrors: mirrorSet.ids) where total > config.spoolLimit {
            try index.transaction {
                for m in missing { try index.ledger.abandon(object: object.id, mirror: m) }
                try index.ledger.clearSpool(object: object.id)
            }
            if let s = object.spool { unlink(config.spoolDirectory + "/" + s) }
            total -= object.size
            summary.warnings.append("spool is over its limit (\(config.spoolLimit) bytes): gave up \(object.path) for \(missing.map { mirrorSet.url(of: $0) }.joined(separator: ", ")); use fbk mirror-sync")
        }
    }

    // MARK: Chunks and packs

    /// Stores one chunk unless the index or the pipeline has it.
    private func storeChunk(_ plaintext: UnsafeRawBufferPointer, kind: ChunkKind) throws -> ChunkID {
        try storeChunk(plaintext, kind: kind) { Array(plaintext) }
    }

    /// Stores a data chunk the chunker gathered in an array of its own: the
    /// pipeline takes that array, no copy is made.
    private func storeChunk(gathered chunk: [UInt8]) throws -> ChunkID {
        try chunk.withUnsafeBytes { try storeChunk($0, kind: .data) { chunk } }
    }

    /// - Parameter bytes: the chunk as an array the pipeline can keep, asked
    ///   for only if the chunk is new and once the pipeline has room.
    private func storeChunk(_ plaintext: UnsafeRawBufferPointer, kind: ChunkKind, bytes: () -> [UInt8]) throws -> ChunkID {
        let id = keys.chunkID(plaintext)
        if pendingChunks.contains(id) { return id }
        if let pack = try index.chunks.packOfChunk(id) {
            if reusablePacks.contains(pack) {
                neededPacks.insert(pack)
                return id
            }
            // Its pack is past the reuse horizon, or sealed to other
            // certificates: the servers may prune it, or a new recipient
            // could not open it. Stored again.
            summary.renewedChunks += 1
            summary.renewedBytes += UInt64(plaintext.count)
        }
        try pipeline!.submit(id: id, kind: kind, length: plaintext.count, bytes: bytes)
        pendingChunks.insert(id)
        summary.newChunks += 1
        summary.newBytes += UInt64(plaintext.count)
        try record(pipeline!.takeDelivered())
        return id
    }

    /// Records packs the pipeline delivered: their chunks enter the index,
    /// and files whose chunks are now all stored enter the files cache.
    private func record(_ packs: [DeliveredPack]) throws {
        guard !packs.isEmpty else { return }
        for pack in packs {
            let id = try record(file: pack.spoolFile, as: pack.path, kind: .pack, size: pack.size, sha256: pack.sha256,
                                chunks: pack.entries, deliveredTo: pack.mirrors)
            summary.packs += 1
            summary.storedBytes += UInt64(pack.entries.reduce(0) { $0 + $1.storedLength })
            try listing?.append(path: pack.path, entries: pack.entries)
            // Every chunk a new pack holds was stored because this snapshot uses it.
            neededPacks.insert(id)
            reusablePacks.insert(id)
            neededNew.insert(id)
            for e in pack.entries { pendingChunks.remove(e.id) }
            storedThrough = pack.lastSequence + 1
        }
        try commitPendingFiles()
    }

    /// Caches the files whose chunks are all stored.
    private func commitPendingFiles() throws {
        // A count, not a slice: a slice would share the array's storage,
        // and removing the committed files would then copy all the rest.
        let ready = pendingFiles.firstIndex { $0.through > storedThrough } ?? pendingFiles.endIndex
        guard ready > 0 else { return }
        try index.transaction {
            for i in 0..<ready {
                let f = pendingFiles[i]
                var file = f.file
                if file.packs == nil { file.packs = try packsHolding(file.regions.decode()).map { $0.sorted() } }
                try index.files.cacheFile(path: f.path, file)
            }
        }
        pendingFiles.removeFirst(ready)
    }

    // MARK: Walking

    /// A node of the selection: which children of a directory to include.
    final class Selection {
        var children: [PathBytes: Selection] = [:]
        /// The whole directory is selected.
        var all = false
    }

    private func archiveRoot() throws -> ChunkID {
        let selection = Selection()
        for p in config.paths {
            // A configured path that is gone is said, not silently left out.
            if FileSystem.lstat(Array(p.utf8)) == nil && errno == ENOENT {
                summary.missingPaths.append(p)
                summary.warnings.append("configured path \(p.terminalSafe) does not exist: the snapshot lacks it (remove it from paths: in the configuration if it is gone for good)")
                continue
            }
            var node = selection
            let components = p.split(separator: "/").map { Array($0.utf8) }
            if components.isEmpty { node.all = true }
            for c in components {
                let child = node.children[c] ?? Selection()
                node.children[c] = child
                node = child
            }
            node.all = true
        }
        guard let root = FileSystem.lstat([UInt8(ascii: "/")]) else {
            throw StoreError(.io, "cannot stat /: \(FileSystem.errnoText())")
        }
        let commands = try archiveCommands()
        return try archiveDirectory([UInt8(ascii: "/")], selection: selection.all ? nil : selection, device: UInt64(root.st_dev),
                                    extra: commands)
    }

    /// Where command sources appear in a snapshot: `/.fbk-commands/NAME`.
    static let commandsDirectory = Array(".fbk-commands".utf8)

    /// The `.fbk-commands` directory: each command's standard output (and
    /// `--stdin`) chunked as it arrives, never written to local disk. A
    /// command that fails is left out and named (the run ends partial).
    private func archiveCommands() throws -> TreeEntry? {
        var sourceNames = config.commands.map(\.name)
        if let stdinSource { sourceNames.append(stdinSource) }
        guard !sourceNames.isEmpty else { return nil }
        var part = TreePartWriter()
        let now = Int64(Date().timeIntervalSince1970 * 1e9)
        func entry(_ name: [UInt8], _ type: EntryType, mode: UInt32) -> TreeEntry {
            TreeEntry(name: name, type: type, mode: mode, uid: getuid(), gid: getgid(), user: names.user(getuid()), group: names.group(getgid()),
                      mtimeNanoseconds: now, ctimeNanoseconds: now, size: 0, xattrs: [])
        }
        for name in Set(sourceNames).sorted(by: { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }) {
            let path = ([UInt8(ascii: "/")] + Self.commandsDirectory).appendingComponent(Array(name.utf8))
            // Each command starts when its turn comes, so its timeout is its own.
            // The closures hold the child to the end of this turn; one not
            // waited for (cancelled) is then killed with its group.
            let read: (UnsafeMutableRawBufferPointer) -> Int, finish: () -> String?
            if let c = config.commands.first(where: { $0.name == name }) {
                let deadline = Date().addingTimeInterval(TimeInterval(c.timeout))
                do {
                    let started = try ChildProcess(shell: c.run, user: c.user, environment: ["FBK_COMMAND": c.name], captureOutput: true)
                    read = { started.read(into: $0, until: deadline) }
                    finish = { started.wait(until: deadline).failure.map { "'\(c.run)' \($0)" } }
                } catch {
                    warn(path, error.message, unreadable: true)
                    continue
                }
            } else {
                read = { buffer in
                    while true {
                        let n = Glibc.read(0, buffer.baseAddress, buffer.count)
                        if n < 0 && errno == EINTR { continue }
                        return n
                    }
                }
                finish = { nil }
            }
            var chunks: [ChunkID] = []
            var got = 0
            var readError: String?
            while true {
                try checkCancelled()
                let n = readBuffer.withUnsafeMutableBytes { read($0) }
                if n < 0 {
                    readError = errno == ETIMEDOUT ? "ran past its timeout" : "cannot be read: \(FileSystem.errnoText())"
                    break
                }
                if n == 0 { break }
                try chunkRead(n, into: &chunks)
                got += n
            }
            try chunker.finishGathered { chunks.append(try storeChunk(gathered: $0)) }
            if let failure = finish() ?? readError {
                warn(path, "\(failure): left out of the snapshot", unreadable: true)
                continue
            }
            var e = entry(Array(name.utf8), .file, mode: 0o600)
            e.size = UInt64(got)
            let regions = EncodedRegions(got > 0 ? [FileRegion(offset: 0, length: UInt64(got), chunks: chunks)] : [])
            try noteLive(regions)
            summary.files += 1
            summary.bytesScanned += UInt64(got)
            if part.append(e, regions: regions) { try part.flush { try storeTree($0) } }
        }
        var directory = entry(Self.commandsDirectory, .directory, mode: 0o700)
        directory.subtree = try part.finish { try storeTree($0) }
        summary.directories += 1
        return directory
    }

    /// Archives one directory (all of it, or the selected children) and
    /// returns its tree ID. `device` is the filesystem its subtree keeps to.
    /// - Parameter extra: an entry to add in its place by name (the root's `.fbk-commands`).
    private func archiveDirectory(_ path: PathBytes, selection: Selection?, device: UInt64, extra: TreeEntry? = nil) throws -> ChunkID {
        var extra = extra
        try checkCancelled()
        // A directory taken whole is walked ahead on a thread of its own
        // (all below it too); one taken in part, as the configured paths
        // select, is stat'ed here.
        var selected: DirectoryBatches?
        var startedWalker = false
        if let selection {
            selected = DirectoryBatches(directory: path, names: Array(selection.children.keys))
        } else if walker == nil {
            walker = DirectoryWalker(root: path, device: device, rules: rules)
            startedWalker = true
        }
        defer {
            if startedWalker {
                walker?.stop()
                walker = nil
            }
        }
        // A large directory's tree is written in parts as it goes, so its
        // entries are never all in memory (FORMAT.md, "Trees").
        var part = TreePartWriter()
        // In batches: the walk stat'ed a batch; open the files that must be
        // read and let the kernel fetch them all at once, then archive the
        // batch in name order (so a hardlink's target always comes first in
        // a depth-first walk). Before walking a subdirectory the batch's
        // files are closed (the kernel keeps fetching them), so descriptors
        // never pile up with depth.
        while true {
            let scanned: ScannedBatch
            if selected != nil {
                guard let next = selected!.nextBatch(skipping: { _, _ in false }) else { break }
                scanned = next
            } else {
                scanned = try walker!.next(of: path)
            }
            if let e = scanned.listingError { warn(path, "cannot read directory: \(e.text)", unreadable: true) }
            let files = scanned.entries.filter { $0.stat?.fileType == S_IFREG }
            var rows = try index.files.cachedFiles(paths: files.map(\.path)).makeIterator()
            var batch: [Pending] = []
            for entry in scanned.entries {
                let childSelection = selection?.children[entry.name]
                let explicitlySelected = childSelection != nil
                let st: stat, xattrs: FileSystem.Xattrs?
                switch entry.inspected {
                case .success(let found): (st, xattrs) = found
                case .failure(let e) where e.code == ENOENT:
                    warn(entry.path, explicitlySelected ? "configured path does not exist" : "vanished before it was read")
                    continue
                case .failure(let e):
                    warn(entry.path, "cannot stat: \(e.text)", unreadable: true)
                    continue
                }
                batch.append(Pending(name: entry.name, path: entry.path, selection: childSelection.flatMap { $0.all ? nil : $0 },
                                     explicitlySelected: explicitlySelected, st: st, settled: isSettled(st, at: scanned.statedAfter),
                                     xattrs: xattrs,
                                     cacheRow: st.fileType == S_IFREG ? rows.next()! : nil))
            }
            // Files handed to archiveEntry are closed there; the rest here.
            defer { for item in batch { item.close() } }
            try prepare(&batch, in: path)
            for i in batch.indices {
                if batch[i].st.fileType == S_IFDIR {
                    for j in batch.indices.dropFirst(i + 1) {
                        batch[j].close()
                        batch[j].opened = nil
                    }
                }
                let item = batch[i]
                batch[i].opened = nil
                if let e = extra, !item.name.lexicographicallyPrecedes(e.name) {
                    if part.append(e) { try part.flush { try storeTree($0) } }
                    extra = nil
                    if item.name == e.name {
                        warn(item.path, "left out: fbk stores its command sources under this name")
                        continue
                    }
                }
                if let (entry, regions) = try archiveEntry(item, device: device) {
                    if let regions { try noteLive(regions) }
                    if part.append(entry, regions: regions) { try part.flush { try storeTree($0) } }
                }
            }
            if scanned.isLast { break }
        }
        if let e = extra, part.append(e) { try part.flush { try storeTree($0) } }
        return try part.finish { try storeTree($0) }
    }

    private func storeTree(_ bytes: [UInt8]) throws -> ChunkID {
        let id = try bytes.withUnsafeBytes { try storeChunk($0, kind: .tree) }
        try noteLive(id)
        return id
    }

    /// A directory entry stat'ed ahead of archiving; a regular file that
    /// must be read is already open, with the kernel asked to fetch it.
    private struct Pending {
        let name: PathBytes
        let path: PathBytes
        let selection: Selection?
        let explicitlySelected: Bool
        let st: stat
        /// Its ctime was old enough when it was stat'ed for a files-cache row.
        let settled: Bool
        /// Nil for a regular file until `prepare` fills it in.
        var xattrs: FileSystem.Xattrs?
        /// The files cache's row for the path, if any (not yet compared).
        let cacheRow: FilesCache.CachedFile?
        /// Regions from the files cache, usable as they are, and their packs.
        var cached: (regions: EncodedRegions, packs: [Int])?
        /// The open file, or why it could not be opened (errno).
        var opened: Result<Int32, FileSystem.Errno>?

        func close() {
            if case .success(let fd) = opened { _ = Glibc.close(fd) }
        }
    }

    /// Looks up the files cache for the batch's regular files, opens the
    /// others, advising the kernel to read them now, and reads the
    /// extended attributes the files cache does not have.
    private func prepare(_ batch: inout [Pending], in directory: PathBytes) throws {
        var upgrades: [(index: Int, row: FilesCache.CachedFile)] = []
        for i in batch.indices where batch[i].st.fileType == S_IFREG && !(rules.isTooLarge(batch[i].st) && !batch[i].explicitlySelected) {
            let st = batch[i].st
            if st.st_nlink > 1 && hardlinks[HardlinkKey(dev: UInt64(st.st_dev), ino: UInt64(st.st_ino))] != nil { continue }
            if let row = batch[i].cacheRow, let (cached, upgrade) = try usableCache(row, st: st) {
                batch[i].cached = cached
                batch[i].xattrs = row.xattrs
                if let upgrade { upgrades.append((i, upgrade)) }
                continue
            }
            let opened = FileSystem.openForReading(batch[i].path)
            batch[i].opened = opened
            if case .success(let fd) = opened, st.st_size > 0 {
                _ = posix_fadvise(fd, 0, off_t(min(Int(st.st_size), Self.readAhead)), POSIX_FADV_WILLNEED)
            }
        }
        let unread = batch.indices.filter { batch[$0].xattrs == nil }
        if !unread.isEmpty {
            let read = FileSystem.xattrs(in: directory, unread.map { (batch[$0].name, batch[$0].path) })
            for (i, x) in zip(unread, read) { batch[i].xattrs = x }
        }
        // A row from before packs or extended attributes were kept:
        // rewritten with them, once.
        for (i, var row) in upgrades where batch[i].settled {
            row.xattrs = batch[i].xattrs
            pendingFiles.append((batch[i].path, row, 0))
        }
        if pendingFiles.count >= 1024 { try commitPendingFiles() }
    }

    /// The entry for the tree, and a file's regions, encoded. `device` is
    /// the filesystem the walk keeps to in the entry's directory.
    private func archiveEntry(_ item: Pending, device: UInt64) throws -> (TreeEntry, EncodedRegions?)? {
        let (path, name, st, selection) = (item.path, item.name, item.st, item.selection)
        let explicitlySelected = item.explicitlySelected
        var e = TreeEntry(
            name: name, type: .file, mode: UInt32(st.st_mode & 0o7777), uid: st.st_uid, gid: st.st_gid,
            user: names.user(st.st_uid), group: names.group(st.st_gid),
            mtimeNanoseconds: st.mtimeNanoseconds, ctimeNanoseconds: st.ctimeNanoseconds,
            size: 0, xattrs: item.xattrs ?? [])
        switch st.fileType {
        case S_IFDIR:
            e.type = .directory
            summary.directories += 1
            if !explicitlySelected && !rules.enters(path, st, device: device) {
                // A mount point of another filesystem, a built-in exclude
                // (/proc, /tmp, fbk's own state…), or a directory marked by
                // CACHEDIR.TAG or exclude_if_present: recorded, not entered.
                e.subtree = try storeTree(TreeFormat.serialize([]))
            } else {
                e.subtree = try archiveDirectory(path, selection: selection, device: rules.device(of: path, st, parent: device))
            }
        case S_IFREG:
            if !explicitlySelected && rules.isTooLarge(st) {
                item.close()
                summary.excludedLarge += 1
                return nil
            }
            e.size = UInt64(st.st_size)
            summary.files += 1
            summary.bytesScanned += UInt64(st.st_size)
            let key = HardlinkKey(dev: UInt64(st.st_dev), ino: UInt64(st.st_ino))
            if st.st_nlink > 1, let first = hardlinks[key] {
                item.close()
                e.type = .hardlink
                e.target = first
                return (e, nil)
            }
            guard let regions = try archiveFile(item, size: &e.size) else { return nil }
            if st.st_nlink > 1 { hardlinks[key] = Array(path.dropFirst()) }
            reportProgress()
            return (e, regions)
        case S_IFLNK:
            e.type = .symlink
            guard let target = FileSystem.readlink(path) else {
                warn(path, "cannot read symbolic link: \(FileSystem.errnoText())", unreadable: true)
                return nil
            }
            e.target = target
            e.size = UInt64(target.count)
            summary.otherEntries += 1
        case S_IFIFO:
            e.type = .fifo
            summary.otherEntries += 1
        case S_IFSOCK:
            e.type = .socket
            summary.otherEntries += 1
        case S_IFCHR, S_IFBLK:
            e.type = st.fileType == S_IFCHR ? .characterDevice : .blockDevice
            e.rdev = UInt64(st.st_rdev)
            summary.otherEntries += 1
        default:
            warn(path, "unknown file type, skipped")
            return nil
        }
        reportProgress()
        return (e, nil)
    }

    /// A file changed less than this before it was stat'ed gets no
    /// files-cache row (it is read again next time). File times are
    /// coarse, a clock tick (a second or two on some filesystems): a change
    /// in the same tick after the file was read would leave the stat as
    /// the row has it, and the cache would keep the older content.
    static let settleTime: Int64 = 2_000_000_000

    private func isSettled(_ st: stat, at statedAfter: Int64) -> Bool {
        st.ctimeNanoseconds <= statedAfter - Self.settleTime
    }

    /// The files cache's regions for a file, if it is unchanged since they
    /// were stored and every chunk is still in a known pack; and the row to
    /// write again if it lacks the packs or the extended attributes.
    private func usableCache(_ cached: FilesCache.CachedFile, st: stat) throws
        -> (cached: (regions: EncodedRegions, packs: [Int]), upgrade: FilesCache.CachedFile?)? {
        guard cached.dev == UInt64(st.st_dev), cached.ino == UInt64(st.st_ino),
              cached.size == UInt64(st.st_size), cached.mtime == st.mtimeNanoseconds, cached.ctime == st.ctimeNanoseconds
        else { return nil }
        if let packs = cached.packs, packs.allSatisfy({ reusablePacks.contains($0) }) {
            return ((cached.regions, packs), cached.xattrs == nil ? cached : nil)
        }
        guard let packs = try packsHolding(cached.regions.decode()) else { return nil }
        var upgraded = cached
        upgraded.packs = packs.sorted()
        return ((cached.regions, upgraded.packs!), upgraded)
    }

    /// Reads a regular file's content into chunks, or reuses the files cache.
    /// Returns nil if the file could not be read at all (a warning is recorded).
    private func archiveFile(_ item: Pending, size: inout UInt64) throws -> EncodedRegions? {
        let (path, st) = (item.path, item.st)
        if let cached = item.cached {
            neededPacks.formUnion(cached.packs)
            summary.filesFromCache += 1
            return cached.regions
        }
        let fd: Int32
        switch item.opened ?? FileSystem.openForReading(path) {
        case .success(let opened): fd = opened
        case .failure(let e):
            if e.code == ENOENT { warn(path, "vanished before it was read") }
            else { warn(path, "cannot open: \(e.text)", unreadable: true) }
            return nil
        }
        defer { close(fd) }
        var before = stat()
        guard fstat(fd, &before) == 0, before.fileType == S_IFREG, before.st_ino == st.st_ino else {
            warn(path, "was replaced while being read")
            return nil
        }
        // What is read is what the file holds now, which may be more or
        // less than when it was listed: the entry's size follows it, so
        // the regions never pass the size (a tree that says otherwise
        // could not be restored).
        size = UInt64(before.st_size)
        let sparse = Int(before.st_blocks) * 512 < Int(before.st_size)
        var regions: [FileRegion] = []
        var end = 0
        for (offset, length) in FileSystem.dataRegions(fd: fd, size: Int(before.st_size), sparse: sparse) {
            guard lseek(fd, offset, SEEK_SET) == offset else {
                warn(path, "cannot seek: \(FileSystem.errnoText())", unreadable: true)
                return nil
            }
            var chunks: [ChunkID] = []
            var remaining = length
            var got = 0
            // Ask the kernel to read ahead of the chunker, so the disk works
            // while this thread computes (a cold first snapshot was read-bound).
            var advised = offset
            while remaining > 0 {
                try checkCancelled()
                if advised < offset + length && advised - (offset + got) < Self.readAhead / 2 {
                    _ = posix_fadvise(fd, off_t(advised), off_t(Self.readAhead), POSIX_FADV_WILLNEED)
                    advised += Self.readAhead
                }
                let want = min(remaining, readBuffer.count)
                let n = readBuffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, want) }
                if n < 0 {
                    if errno == EINTR { continue }
                    warn(path, "read failed: \(FileSystem.errnoText())", unreadable: true)
                    chunker.reset()
                    return nil
                }
                if n == 0 { break }  // shrank while being read
                try chunkRead(n, into: &chunks)
                remaining -= n
                got += n
            }
            try chunker.finishGathered { chunks.append(try storeChunk(gathered: $0)) }
            if got > 0 { regions.append(FileRegion(offset: UInt64(offset), length: UInt64(got), chunks: chunks)) }
            end = offset + got
        }
        var after = stat()
        if fstat(fd, &after) == 0, after.st_size != before.st_size || after.mtimeNanoseconds != before.mtimeNanoseconds
            || end > Int(before.st_size) {
            warn(path, "changed while being read; stored what was read")
            size = UInt64(max(end, Int(min(after.st_size, before.st_size))))
            if let last = regions.last, last.offset + last.length > size { size = last.offset + last.length }
            return EncodedRegions(regions)
        }
        let encoded = EncodedRegions(regions)
        guard item.settled else { return encoded }
        // Keyed by the stat taken when the file was listed, before its
        // extended attributes and content were read: whatever changed
        // since shows in the next run's stat, and the file is read again.
        pendingFiles.append((path, FilesCache.CachedFile(
            dev: UInt64(st.st_dev), ino: UInt64(st.st_ino), size: UInt64(st.st_size),
            mtime: st.mtimeNanoseconds, ctime: st.ctimeNanoseconds, regions: encoded, xattrs: item.xattrs), pipeline!.submitted))
        if pendingFiles.count >= 1024 { try commitPendingFiles() }
        return encoded
    }

    /// Feeds the first `n` bytes of the read buffer (a file's or a
    /// command's) to the chunker, storing the chunks it cuts.
    private func chunkRead(_ n: Int, into chunks: inout [ChunkID]) throws {
        try readBuffer.withUnsafeBytes { raw in
            try chunker.feed(UnsafeRawBufferPointer(rebasing: raw[0..<n]),
                             emit: { chunks.append(try storeChunk($0, kind: .data)) },
                             emitGathered: { chunks.append(try storeChunk(gathered: $0)) })
        }
        summary.bytesRead += UInt64(n)
        reportProgress(every: 1)
    }

    /// The packs holding every chunk of a cached file, or nil if any chunk
    /// is unknown or only in a pack this run may not reuse (the file is
    /// then read again, and those chunks stored again).
    private func packsHolding(_ regions: [FileRegion]) throws -> Set<Int>? {
        var packs = Set<Int>()
        for r in regions {
            for c in r.chunks {
                if let p = try index.chunks.packOfChunk(c), reusablePacks.contains(p) { packs.insert(p) } else { return nil }
            }
        }
        return packs
    }

    private func warn(_ path: PathBytes, _ message: String, unreadable: Bool = false) {
        summary.warnings.append("\(path.displayPath): \(message)")
        if unreadable { summary.unreadable += 1 }
    }

    private func checkCancelled() throws {
        if isCancelled() { throw StoreError(.interrupted, "stopped by a signal; what was stored stays recorded, the next run continues") }
    }

    /// Reports progress if 250 ms passed, asking the clock on every
    /// `every`th call (per entry 64, per 1 MiB read 1).
    /// The previous snapshot's scanned bytes, read once (nil inside: none).
    private var expectedBytes: UInt64??

    private func reportProgress(every: Int = 64) {
        guard let progress else { return }
        progressCalls &+= 1
        guard progressCalls % every == 0 else { return }
        let now = clock.now
        guard now - lastProgress >= .milliseconds(250) else { return }
        lastProgress = now
        if expectedBytes == nil { expectedBytes = .some(try? index.ledger.lastSnapshotBytesScanned()) }
        progress(SnapshotProgress(files: summary.files, bytesScanned: summary.bytesScanned, newBytes: summary.newBytes,
                                  uploadedBytes: mirrorSet.mostUploadedBytes,
                                  elapsed: (now - started).seconds, expectedBytes: expectedBytes ?? nil))
    }

    private func writeFile(_ path: String, _ bytes: [UInt8]) throws {
        let file = try spoolFile(path)
        try bytes.withUnsafeBytes { try file.write($0) }
        try file.commit()
    }
}

/// A new object in the spool: written as it comes, synced when committed.
private func spoolFile(_ path: String) throws(StoreError) -> DurableFile.Writer {
    do { return try DurableFile.Writer(creating: path) } catch { throw error.error }
}
