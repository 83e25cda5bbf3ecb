// A client's repository as the operator sees it with the private key:
// snapshots, the escrowed client secret, and chunks, each pack decrypted at
// most once, into a private work directory (never held whole in memory).
// Where each chunk is goes into an SQLite file in that directory, so memory
// does not grow with the number of chunks.

import FoundationEssentials
import Glibc
import Seal
import Backend
import Format
import Platform

/// Who the operator trusts a client's backups to come from: pinned at
/// enrollment, never taken from the storage that is being read.
public enum ClientIdentity: Sendable {
    /// The client's signing public key (`signing.pub`, or the check
    /// configuration's `signing_key`). Records and catalogs must verify with
    /// it, and the escrowed secret must derive it.
    case signingKey(VerifyingKey)
    /// The client secret from the enrollment bundle: it derives the signing
    /// key and the chunk-ID key, so the escrow is not needed.
    case secret(ClientKeys)
    /// Whatever secret the storage's escrow holds. Only for an operator who
    /// lost the enrollment bundle: a server that replaced the escrow and
    /// signed its own records with it is believed.
    case escrowUnpinned
}

/// Reads one client's backups from one or more sources.
public final class Repository {
    let sources: [any Backend]
    let opener: Opener
    let client: String
    /// Where decrypted packs are kept while needed (mode 0700, removed at the end).
    let workDirectory: String
    /// The client's keys: chunk IDs are always checked against them.
    public let keys: ClientKeys
    /// Every snapshot signed by the pinned identity, by the client's signed
    /// start time, oldest first; future-dated ones are refused.
    public private(set) var snapshots: [SnapshotRecord] = []
    /// Each snapshot's verified catalog (by ID), where a source holds one.
    private var catalogs: [SnapshotID: Catalog] = [:]
    /// Records refused (unsigned, signed by another key, misnamed,
    /// future-dated…): never listed, restored or used to find chunks.
    public private(set) var rejected: [String] = []
    /// Snapshots whose own listing claims packs their catalog does not
    /// list (a client that tried to misdirect restores), by ID.
    public private(set) var misdirecting: [SnapshotID: String] = [:]
    /// Problems met while loading (unreadable records…).
    public private(set) var warnings: [String] = []
    /// Chunk → pack and length, from the records' pack listings; the restore plan.
    let work: WorkDatabase
    /// Packs decrypted into the work directory while they are needed.
    let packs: PackCache
    private let decompressor = ChunkDecompressor()
    public var packsDecrypted: Int { packs.decryptedCount }
    /// The snapshot chunks are located for (`select`).
    private var selected: SnapshotID?
    private let acceptFutureDated: Bool

    /// How far a record's own start time may lie after the time the server
    /// received its catalog (clock skew) before it is refused as future-dated.
    public static let allowedSkew: TimeInterval = 3600

    /// - Parameter acceptFutureDated: believe records dated after their
    ///   receipt (a client whose clock runs ahead); they are still ordered
    ///   by their signed start times.
    /// - Throws: `StoreError` (another library's error, such as a key that
    ///   does not open the escrow, is its cause).
    public convenience init(sources: [any Backend], opener: Opener, client: String, identity: ClientIdentity,
                            acceptFutureDated: Bool = false) throws(StoreError) {
        do {
            try self.init(checking: sources, opener: opener, client: client, identity: identity, acceptFutureDated: acceptFutureDated)
        } catch {
            throw StoreError.wrapping(error, as: .underlying)
        }
    }

    private init(checking sources: [any Backend], opener: Opener, client: String, identity: ClientIdentity,
                 acceptFutureDated: Bool) throws {
        precondition(!sources.isEmpty)
        self.acceptFutureDated = acceptFutureDated
        self.sources = sources
        self.opener = opener
        self.client = client
        let scratch = try PrivateDirectory(prefix: "fbk-restore")
        workDirectory = scratch.path
        packs = PackCache(opener: PackOpener(sources: sources, opener: opener, workDirectory: scratch.path))
        do {
            work = try WorkDatabase(directory: workDirectory)
            var loadWarnings: [String] = []
            keys = try Self.loadKeys(sources: sources, opener: opener, client: client, identity: identity, warnings: &loadWarnings)
            warnings = loadWarnings
            try work.batch { try loadSnapshots() }
        } catch {
            scratch.remove()
            throw error
        }
    }

    deinit { PrivateDirectory.remove(workDirectory) }

    /// The object from one source, or nil when that source does not hold
    /// it. Any other failure (a source down, refusing, an object larger
    /// than `limit`) is said in `problems`: it is never taken for "missing".
    static func fetch(_ object: String, from source: any Backend, limit: Int, problems: inout [String]) -> FetchedObject? {
        do {
            return try source.fetch(object, limit: limit)
        } catch where error.kind == .notFound {
            return nil
        } catch {
            problems.append("\(object) on \(source.location) cannot be read: \(error.message)")
            return nil
        }
    }

    /// The client's keys, checked against the pinned identity.
    /// - Throws: `StoreError.integrity` when the escrow is missing or is not
    ///   the enrolled client's, saying what to give instead.
    private static func loadKeys(sources: [any Backend], opener: Opener, client: String, identity: ClientIdentity,
                                 warnings: inout [String]) throws -> ClientKeys {
        var replaced: [String] = []
        func escrowed() throws -> ClientKeys? {
            var found: ClientKeys?
            var notForThisKey: SealError?
            for source in sources {
              // The first escrow, and those sealed to later sets of certificates (re-keying).
              let later = ((try? source.list(.escrow)) ?? []).map(\.path).filter { $0 != ObjectName.escrow.path }
              for name in [ObjectName.escrow.path] + later {
                guard let object = fetch(name, from: source, limit: ObjectLimits.escrow, problems: &warnings) else { continue }
                let path = object.path
                do {
                    let sealed = try readBounded(path, limit: ObjectLimits.escrow, what: "the escrowed client secret")
                    let text = String(decoding: try opener.open(sealed).plaintext, as: UTF8.self)
                        .trimmingWhitespace()
                    guard let secret = Hex.decode(text), secret.count == 32 else {
                        throw StoreError(.integrity, "the escrowed client secret \(path) is malformed")
                    }
                    let keys = try ClientKeys(secret: secret)
                    if case .signingKey(let pinned) = identity, keys.signingKey().publicKey != pinned {
                        replaced.append("\(path) holds a secret that is not the enrolled client's (it derives signing key \(keys.signingKey().publicKey.hex), not \(pinned.hex)): the escrow was replaced, or the signing key given is not this client's (compare it with bundles/\(client)/signing.pub)")
                        continue
                    }
                    if found == nil { found = keys }
                } catch let e as SealError where e.code == .wrongPassphrase {
                    throw e
                } catch let e as SealError where e.code == .wrongKey {
                    notForThisKey = e
                } catch {
                    warnings.append("\(path): \(error)")
                }
              }
            }
            if found == nil, let notForThisKey { throw notForThisKey }
            return found
        }
        switch identity {
        case .secret(let keys):
            return keys
        case .signingKey:
            guard let keys = try escrowed() else {
                let why = replaced.isEmpty ? "no escrowed client secret on any source (\(ObjectName.escrow.path) is missing)" : replaced.joined(separator: "; ")
                throw StoreError(.integrity, "\(why): chunk IDs cannot be checked against the enrolled client's secret; give the client secret from the enrollment bundle with --secret bundles/\(client)/secret")
            }
            warnings += replaced.map { $0 + "; ignored" }
            return keys
        case .escrowUnpinned:
            guard let keys = try escrowed() else {
                throw StoreError(.integrity, "no source holds a readable escrowed client secret (\(ObjectName.escrow.path)), and no identity is pinned: nothing can be verified. Give --secret bundles/\(client)/secret or --signing-key bundles/\(client)/signing.pub from the enrollment bundle")
            }
            warnings.append("UNPINNED: trusting the escrowed secret the storage holds (signing key \(keys.signingKey().publicKey.hex)); a server that replaced it can make forged snapshots look genuine. Compare that key with the client's signing.pub before trusting what is restored")
            return keys
        }
    }

    /// What the sources hold of one snapshot.
    private struct Candidate {
        var id: SnapshotID
        var catalog: Catalog?
        var catalogSource: String?
        /// The earliest time a source says it received the snapshot (orders the reading of listings).
        var receipt: Date?
        /// The latest such time (a record dated after it is future-dated on every source).
        var lastReceipt: Date?

        mutating func received(_ t: Date?) {
            guard let t else { return }
            receipt = min(receipt ?? t, t)
            lastReceipt = max(lastReceipt ?? t, t)
        }
    }

    private func loadSnapshots() throws {
        let pinned = keys.signingKey().publicKey
        var candidates: [SnapshotID: Candidate] = [:]
        var recordReceipts: [SnapshotID: [Date]] = [:]
        for source in sources {
            let listed: [StoredObject]
            do { listed = try source.list(.record) + source.list(.catalog) } catch {
                warnings.append("\(source.location): the snapshots cannot be listed (\(error.message)): only the other sources are read")
                continue
            }
            for stored in listed {
                guard let name = stored.name, let id = name.snapshotID else { continue }
                let object = name.path
                var c = candidates[id] ?? Candidate(id: id)
                if name.kind == .record, let t = stored.received { recordReceipts[id, default: []].append(t) }
                if name.kind == .catalog {
                    var problems: [String] = []
                    guard let fetched = Self.fetch(object, from: source, limit: ObjectLimits.document, problems: &problems) else {
                        rejected.append(problems.first ?? "\(object) on \(source.location) is listed but is not there")
                        continue
                    }
                    do {
                        let bytes = try fetched.bytes(what: "catalog")
                        let (catalog, _) = try SignedDocument.decode(Catalog.self, from: bytes, name: object, verifyingKey: pinned)
                        guard catalog.client == client, catalog.snapshot == id, catalog.record.path == ObjectName.record(id).path else {
                            rejected.append("\(object) claims to be \(catalog.client)/\(catalog.snapshot): ignored")
                            continue
                        }
                        if let first = c.catalog, first != catalog {
                            warnings.append("\(object): \(source.location) holds a different catalog, also signed by the client, than \(c.catalogSource ?? "another source") (a compromised client wrote one first?): the first is used")
                        } else if c.catalog == nil {
                            (c.catalog, c.catalogSource) = (catalog, source.location)
                        }
                        c.received(stored.received)
                    } catch {
                        rejected.append("\(object) on \(source.location): \(error)")
                    }
                }
                candidates[id] = c
            }
        }
        // Without a catalog, the record's own receipt time orders it.
        for (id, var c) in candidates where c.catalog == nil {
            for t in recordReceipts[id] ?? [] { c.received(t) }
            candidates[id] = c
        }
        // Listings whose snapshot has neither record nor catalog on any
        // source: prune keeps a removed snapshot's listing while packs it
        // maps survive (FORMAT.md 14). Claims like any listing's, about
        // packs some catalog lists only.
        var orphans: [SnapshotID: (path: String, receipt: Date?)] = [:]
        for source in sources {
            for stored in (try? source.list(.listing)) ?? [] {
                guard let id = stored.name?.snapshotID, candidates[id] == nil else { continue }
                let earliest = [orphans[id]?.receipt, stored.received].compactMap { $0 }.min()
                orphans[id] = (stored.path, earliest)
            }
        }
        let cataloguedPacks = Set(candidates.values.flatMap { $0.catalog?.packs.map(\.path) ?? [] })
        enum Reading { case snapshot(Candidate), orphan(SnapshotID, String) }
        var ordered: [(receipt: Date?, id: SnapshotID, reading: Reading)] = candidates.values.map { ($0.receipt, $0.id, .snapshot($0)) }
        ordered += orphans.map { ($0.value.receipt, $0.key, .orphan($0.key, $0.value.path)) }
        ordered.sort { ($0.receipt ?? .distantPast, $0.id) < ($1.receipt ?? .distantPast, $1.id) }
        // Listings are read in the order the servers received them (the first
        // word on a pack is believed, the pack tables decide when it is wrong).
        for item in ordered {
            switch item.reading {
            case .snapshot(let c): try loadSnapshot(c, pinned: pinned)
            case .orphan(let id, let path): try loadOrphanListing(path, of: id, packs: cataloguedPacks)
            }
        }
        // After re-keying, older records are sealed to certificates this key
        // is not among: those snapshots are named, the others restore. A key
        // that opens none is the wrong key.
        if snapshots.isEmpty, let notForThisKey { throw notForThisKey }
        // Snapshots are ordered by the client's signed start time (to the
        // millisecond; IDs have whole seconds), which neither a server's file
        // times nor a copy without them (cp -r, a checkout) can change; a
        // record dated after its receipt was refused above, so none can sort
        // after the genuine ones for good.
        snapshots.sort { ($0.started, $0.id) < ($1.started, $1.id) }
    }

    /// Reads the listing of a snapshot prune removed, as hints for the packs
    /// the catalogs still on the sources list.
    private func loadOrphanListing(_ path: String, of id: SnapshotID, packs: Set<String>) throws {
        var problems: [String] = []
        for source in sources {
            guard let fetched = Self.fetch(path, from: source, limit: ObjectLimits.listing, problems: &problems) else { continue }
            do {
                let bytes = try fetched.bytes(what: "pack listing")
                _ = try PackListingDocument.open(bytes, path: path, keys: keys, accept: { $0.client == client && $0.snapshot == id }) { [work] pack, chunks in
                    if packs.contains(pack) { _ = try work.locator.addPack(pack, chunks: chunks) }
                }
                return
            } catch let error as StoreError where error.code != .integrity {
                throw error
            } catch {
                problems.append("\(source.location): \(error)")
            }
        }
        if !problems.isEmpty { warnings.append("\(path), a removed snapshot's listing, was not read: \(problems.joined(separator: "; "))") }
    }

    /// Loads one snapshot's record (the copy its catalog names) and listing.
    private func loadSnapshot(_ c: Candidate, pinned: VerifyingKey) throws {
        let object = ObjectName.record(c.id).path
        var problems: [String] = []
        var bytes: [UInt8]?
        for source in sources {
            guard let fetched = Self.fetch(object, from: source, limit: ObjectLimits.document, problems: &problems) else { continue }
            do {
                let sealed = try fetched.bytes(what: "snapshot record")
                if let named = c.catalog?.record, sealed.count != named.size || SHA256.hash(sealed).hex != named.sha256 {
                    problems.append("\(source.location): not the record its catalog names (size or SHA-256 differ)")
                    continue
                }
                bytes = sealed
                break
            } catch {
                problems.append("\(source.location): \(error)")
            }
        }
        guard let sealed = bytes else {
            if problems.isEmpty {
                if c.catalog != nil { warnings.append("\(object) is missing from every source: snapshot \(c.id) cannot be read") }
            } else {
                rejected.append("\(object): \(problems.joined(separator: "; "))")
            }
            return
        }
        let catalogPacks = c.catalog.map { Set($0.packs.map(\.path)) }
        var claimedElsewhere: [String] = []
        // Packs a listing names are believed only where its own catalog lists
        // them, and only if no snapshot received earlier named them first.
        let addPack = { [work] (pack: String, chunks: [(id: ChunkID, length: Int)]) throws in
            if let catalogPacks, !catalogPacks.contains(pack) {
                claimedElsewhere.append(pack)
                return
            }
            try work.locator.addPack(pack, chunks: chunks)
        }
        do {
            let plain = try opener.open(sealed).plaintext
            var refusal: String?
            let record = try SignedDocument.decodeRecord(
                from: plain, name: object, verifyingKey: pinned,
                accept: { record in
                    if record.client != client || record.id != c.id {
                        refusal = "claims to be \(record.client)/\(record.id)"
                    } else if !acceptFutureDated, let started = parseRFC3339(record.started) {
                        // After the last time any source received it, or after now: no
                        // genuine record can be, unless the client's clock runs ahead.
                        let bound = min(c.lastReceipt ?? Date(), Date())
                        if started > bound + Self.allowedSkew {
                            refusal = "is dated \(record.started), after \(c.lastReceipt == nil ? "now" : "every source received it (\(Timestamp.rfc3339(bound)))"): refused as future-dated; if this client's clock is known to run ahead, give --accept-future-dated"
                        }
                    }
                    return refusal == nil
                },
                eachPack: addPack)
            guard let record else {
                rejected.append("\(object) \(refusal ?? "was refused")")
                return
            }
            if let listing = record.listing { try loadListing(listing, of: record, addPack: addPack) }
            snapshots.append(record)
            if let catalog = c.catalog { catalogs[record.id] = catalog } else {
                warnings.append("snapshot \(record.id) has no catalog signed by the client on any source (its upload did not finish, or the catalog was lost): its chunks are looked for in any pack")
            }
            if !claimedElsewhere.isEmpty {
                let first = claimedElsewhere.sorted().first!
                misdirecting[record.id] = "its listing claims \(claimedElsewhere.count) pack(s) its own catalog does not list (e.g. \(first)): written by a client that tried to misdirect restores; those claims were ignored"
                warnings.append("snapshot \(record.id): \(misdirecting[record.id]!)")
            }
        } catch let error as StoreError where error.code != .integrity {
            // The work database failed (a full TMPDIR): no restore can go on.
            throw error
        } catch let e as SealError where e.code == .wrongPassphrase {
            throw e
        } catch let e as SealError where e.code == .wrongKey {
            notForThisKey = e
            rejected.append("\(object) is sealed to other certificates (from before a change of recipients): this key cannot open it; use a key it names")
        } catch {
            rejected.append("\(object): \(error)")
        }
    }

    /// A record this key could not open (sealed to other certificates).
    private var notForThisKey: SealError?

    /// Puts a format-2 record's pack listing into the work database. Without
    /// it (a missing or damaged listing) the snapshot is still restorable:
    /// its packs are opened to find their chunks.
    /// - Throws: `StoreError` only if the work database fails.
    private func loadListing(_ listing: Catalog.Object, of record: SnapshotRecord,
                             addPack: (String, [(id: ChunkID, length: Int)]) throws -> Void) throws {
        let unused = "its packs will be opened to find their chunks"
        guard listing.path == ObjectName.listing(record.id).path else {
            warnings.append("\(ObjectName.record(record.id).path) names \(listing.path) as its listing: ignored, \(unused)")
            return
        }
        guard listing.size <= ObjectLimits.listing else {
            warnings.append("\(ObjectName.record(record.id).path) names a listing of \(listing.size) bytes, more than any listing may have: ignored, \(unused)")
            return
        }
        // The first source whose copy is the one the record names.
        var found: [UInt8]?
        var present = false
        var unreadable: [String] = []
        for source in sources {
            guard let fetched = Self.fetch(listing.path, from: source, limit: listing.size, problems: &unreadable) else { continue }
            let bytes: [UInt8]
            do { bytes = try fetched.bytes(what: "pack listing") } catch {
                unreadable.append("\(listing.path) on \(source.location) cannot be read: \(error.message)")
                continue
            }
            present = true
            if bytes.count == listing.size && SHA256.hash(bytes).hex == listing.sha256 {
                found = bytes
                break
            }
        }
        guard let bytes = found else {
            // A source that could not be read is said as such, never taken for a missing or forged listing.
            let why = present ? "\(listing.path) is not the listing its record names (size or SHA-256 differ)"
                              : unreadable.isEmpty ? "\(listing.path) is missing" : unreadable.joined(separator: "; ")
            warnings.append("\(why): \(unused)")
            return
        }
        do {
            let opened = try PackListingDocument.open(
                bytes, path: listing.path, keys: keys,
                accept: { document in
                    document.client == record.client && document.snapshot == record.id && document.root == record.root
                },
                eachPack: addPack)
            if opened == nil { warnings.append("\(listing.path) belongs to another client, snapshot or root: \(unused)") }
        } catch let error as StoreError where error.code != .integrity {
            throw error
        } catch {
            warnings.append("\(listing.path): \(error); \(unused)")
        }
    }

    /// Locates chunks for `snapshot` from now on: only in the packs its
    /// signed catalog lists, so nothing another snapshot's listing claims
    /// can change how this one restores.
    public func select(_ snapshot: SnapshotRecord) throws(StoreError) {
        try StoreError.boundary {
            guard selected != snapshot.id else { return }
            try work.locator.restrict(to: catalogs[snapshot.id]?.packs.map(\.path))
            selected = snapshot.id
            scannedUnlisted = false
            scannedAll = false

        }
    }

    /// A snapshot by ID, unique ID prefix, or `latest` (the one the client
    /// started last, future-dated records refused).
    public func snapshot(_ reference: String) throws(StoreError) -> SnapshotRecord {
        try StoreError.boundary {
            if reference == "latest" {
                guard let s = snapshots.last else { throw StoreError(.config, "client \(client) has no readable snapshot") }
                return s
            }
            let matches = snapshots.filter { $0.id.text.hasPrefix(reference) }
            guard matches.count == 1 else {
                if matches.isEmpty, let refused = rejected.first(where: { $0.hasPrefix("snapshots/" + reference) }) {
                    throw StoreError(.integrity, "snapshot \(reference) is refused: \(refused)")
                }
                throw StoreError(.config, matches.isEmpty ? "no snapshot \(reference) for client \(client)"
                                                          : "\(reference) matches \(matches.count) snapshots; give more of the ID")
            }
            return matches[0]

        }
    }

    /// The plaintext of a chunk, checked against its ID. A pack that lacks
    /// it or holds it damaged is no reason to give up: every other pack the
    /// listings name for it, and every source's copy of each, is tried.
    /// - Throws: `StoreError.integrity` naming what was tried.
    public func chunk(_ id: ChunkID) throws(StoreError) -> (kind: ChunkKind, bytes: [UInt8]) {
        try StoreError.boundary {
            var problems: [String] = []
            // The first pack is decrypted and kept (trees are read again and
            // again); every candidate copy, that one first, is then tried once.
            if let pack = try chunkLocation(id)?.path {
                do { _ = try packs.pack(pack) } catch { problems.append("\(error)") }
            }
            if let found = try chunkFromAlternatives(id, length: nil, problems: &problems) { return found }
            throw StoreError(.integrity, problems.isEmpty ? "no pack holds chunk \(id.shortDescription)"
                                                          : "chunk \(id.shortDescription) is intact nowhere: \(problems.joined(separator: "; "))")

        }
    }

    /// A pack copy opened for a second look (kept while consecutive chunks need it).
    private var alternative: (pack: String, source: Int, opened: Result<OpenedPack, StoreError>)?

    /// Looks for a chunk in every pack the listings name for it and in every
    /// source's copy of each, other than the copy the plan read first.
    /// - Parameter length: the plaintext length the plan expects (nil: any).
    func chunkFromAlternatives(_ id: ChunkID, length: Int?, problems: inout [String]) throws -> (kind: ChunkKind, bytes: [UInt8])? {
        if let found = try lookElsewhere(id, length: length, problems: &problems) { return found }
        // The listings' claims led nowhere: read the tables of every pack the snapshot may use, and look again.
        guard !scannedAll else { return nil }
        try scanEveryPack()
        return try lookElsewhere(id, length: length, problems: &problems)
    }

    private func lookElsewhere(_ id: ChunkID, length: Int?, problems: inout [String]) throws -> (kind: ChunkKind, bytes: [UInt8])? {
        for candidate in try work.locator.candidates(of: id) {
            let first = packs.peek(candidate.path)
            // The copy decrypted already (for other chunks) may hold this one.
            if let first {
                if let entry = first.entries[id], length == nil || entry.plainLength == length {
                    do {
                        return (entry.kind, try Self.readChunk(entry, from: first.path, pack: candidate.path, keys: keys, decompressor: decompressor))
                    } catch {
                        problems.append("\(candidate.path) on \(sources[first.source].location): \(error)")
                    }
                } else {
                    problems.append("\(candidate.path) on \(sources[first.source].location) does not hold it")
                }
            }
            for (i, source) in sources.enumerated() where i != first?.source {
                if alternative?.pack != candidate.path || alternative?.source != i {
                    if case .success(let old)? = alternative?.opened { unlink(old.path) }
                    alternative = (candidate.path, i, packs.opener.open(candidate.path, sources: [i], as: "alternative"))
                }
                do {
                    let opened = try alternative!.opened.get()
                    guard let entry = opened.entries[id], length == nil || entry.plainLength == length else {
                        problems.append("\(candidate.path) on \(source.location) does not hold it")
                        continue
                    }
                    return (entry.kind, try Self.readChunk(entry, from: opened.path, pack: candidate.path, keys: keys, decompressor: decompressor))
                } catch {
                    problems.append("\(candidate.path) on \(source.location): \(error)")
                }
            }
        }
        return nil
    }

    /// Drops the pack copy opened for a second look.
    func releaseAlternative() {
        if case .success(let old)? = alternative?.opened { unlink(old.path) }
        alternative = nil
    }

    /// Reads a chunk from a decrypted pack file.
    static func readChunk(_ entry: PackEntry, from path: String, pack: String, keys: ClientKeys,
                          decompressor: ChunkDecompressor) throws(StoreError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw StoreError(.io, "cannot read \(path)") }
        defer { close(fd) }
        return try readChunk(entry, from: fd, pack: pack, keys: keys, decompressor: decompressor)
    }

    /// Reads a chunk from a decrypted pack, decompresses it and checks it
    /// against its ID. Touches no shared state, so writer threads call it,
    /// each with its own decompressor.
    static func readChunk(_ entry: PackEntry, from fd: Int32, pack: String, keys: ClientKeys,
                          decompressor: ChunkDecompressor) throws(StoreError) -> [UInt8] {
        let id = entry.id
        // Filled by pread, not zero-filled first; only what it read is kept.
        var got = 0
        let stored = [UInt8](unsafeUninitializedCapacity: entry.storedLength) { buffer, initialized in
            got = pread(fd, buffer.baseAddress, entry.storedLength, off_t(entry.offset))
            initialized = max(0, got)
        }
        guard got == entry.storedLength else {
            throw StoreError(.io, "cannot read chunk \(id.shortDescription) from the decrypted \(pack)")
        }
        let bytes: [UInt8]
        do {
            bytes = try decompressor.decompress(stored, form: entry.form, plainLength: entry.plainLength)
        } catch {
            throw StoreError(.integrity, "chunk \(id.shortDescription) in \(pack) does not decompress: \(error)")
        }
        if bytes.withUnsafeBytes({ keys.chunkID($0) }) != id {
            throw StoreError(.integrity, "chunk \(id.shortDescription) in \(pack) does not match its ID: the pack was replaced or forged")
        }
        return bytes
    }

    /// Where a chunk is (its pack's row in the work database and path) and
    /// its plaintext length, without decrypting; packs no record lists are
    /// opened once to find chunks the listings lack. Nil if no pack holds it.
    /// A chunk's plaintext length, from the selected snapshot's listings
    /// (or the packs' tables): where a chunk starts in a file, without reading it.
    package func chunkLength(_ id: ChunkID) throws(StoreError) -> Int? {
        try StoreError.boundary { try chunkLocation(id)?.length }
    }

    func chunkLocation(_ id: ChunkID) throws -> (pack: Int, path: String, length: Int)? {
        if let l = try work.locator.location(of: id) { return l }
        try scanUnlistedPacks()
        if let l = try work.locator.location(of: id) { return l }
        try scanEveryPack()
        return try work.locator.location(of: id)
    }

    /// Chunks written by a run that stored packs but no listing: find them
    /// by reading (once) the tables of the packs no listing names, among
    /// those the chosen snapshot's catalog lists (every pack, without a catalog).
    private var scannedUnlisted = false
    private func scanUnlistedPacks() throws {
        guard !scannedUnlisted else { return }
        scannedUnlisted = true
        var packs: [String] = []
        if let selected, let catalog = catalogs[selected] {
            packs = catalog.packs.map(\.path)
        } else {
            var seen = Set<String>()
            for source in sources {
                do {
                    for pack in try source.list(.pack) where seen.insert(pack.path).inserted { packs.append(pack.path) }
                } catch {
                    warnings.append("\(source.location): the packs cannot be listed (\(error.message)): only the other sources' are read")
                }
            }
        }
        try scanTables(of: packs.filter { try !work.locator.isListed($0) })
    }

    /// Reads the table of every pack the chosen snapshot may use that has
    /// not been read yet: listings are only claims, and one written by a
    /// compromised client may be the first (and wrong) word on a pack.
    /// Used when the listings' claims did not find a chunk intact.
    private var scannedAll = false
    var hasScannedEveryPack: Bool { scannedAll }
    func scanEveryPack() throws {
        guard !scannedAll else { return }
        scannedAll = true
        try scanUnlistedPacks()
        try scanTables(of: work.locator.unscannedPacks())
    }

    /// Decrypts each pack (into a scratch file, removed at once) to record
    /// what its own table holds.
    private func scanTables(of packs: [String]) throws {
        for pack in packs {
            guard case .success(let opened) = self.packs.opener.open(pack, as: "scan") else { continue }
            unlink(opened.path)
            try work.locator.addScanned(pack, chunks: opened.entries.map { ($0.key, $0.value.plainLength) })
        }
    }

    /// The entries of a directory tree chunk.
    /// A large directory's tree lists parts; their entries are joined, and
    /// must stay in name order across parts.
    public func tree(_ id: ChunkID) throws(StoreError) -> [TreeEntry] {
        try StoreError.boundary {
            let bytes = try treeChunk(id)
            let parts: [ChunkID]?
            do throws(FormatError) { parts = try TreeFormat.parseParts(bytes, name: "tree \(id.shortDescription)") } catch {
                throw StoreError(.integrity, error.description)
            }
            guard let parts else { return try parseTree(bytes, id) }
            var entries: [TreeEntry] = []
            for p in parts {
                let more = try parseTree(try treeChunk(p), p)
                if let last = entries.last, let next = more.first, !last.name.lexicographicallyPrecedes(next.name) {
                    throw StoreError(.integrity, "tree \(id.shortDescription): part \(p.shortDescription) is out of name order")
                }
                entries += more
            }
            return entries

        }
    }

    private func treeChunk(_ id: ChunkID) throws -> [UInt8] {
        let (kind, bytes) = try chunk(id)
        guard kind == .tree else { throw StoreError(.integrity, "chunk \(id.shortDescription) is data, but a tree was expected") }
        return bytes
    }

    private func parseTree(_ bytes: [UInt8], _ id: ChunkID) throws -> [TreeEntry] {
        do { return try TreeFormat.parse(bytes, name: "tree \(id.shortDescription)") } catch {
            throw StoreError(.integrity, error.description)
        }
    }

    /// The entry at a `/`-separated path in a snapshot (nil path: the root directory).
    public func lookup(_ snapshot: SnapshotRecord, path: String) throws(StoreError) -> (entry: TreeEntry?, tree: [TreeEntry]?) {
        try StoreError.boundary {
            try lookup(snapshot, components: path.split(separator: "/").map { Array($0.utf8) })

        }
    }

    /// The entry at a path given as name bytes.
    public func lookup(_ snapshot: SnapshotRecord, components: [[UInt8]]) throws(StoreError) -> (entry: TreeEntry?, tree: [TreeEntry]?) {
        try StoreError.boundary {
            try select(snapshot)
            let path = components.map { String(decoding: $0, as: UTF8.self) }.joined(separator: "/")
            guard let root = Digest(hex: snapshot.root) else { throw StoreError(.integrity, "snapshot \(snapshot.id) has a malformed root") }
            var entries = try tree(root)
            var current: TreeEntry? = nil
            for component in components {
                guard let e = entries.first(where: { $0.name == component }) else {
                    throw StoreError(.config, "no \(path) in snapshot \(snapshot.id)")
                }
                current = e
                if e.type == .directory, let sub = e.subtree { entries = try tree(sub) } else { entries = [] }
            }
            return (current, current == nil || current?.type == .directory ? entries : nil)

        }
    }
}
