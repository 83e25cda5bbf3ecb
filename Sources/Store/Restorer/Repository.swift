// A client's repository as the operator sees it with the private key:
// snapshots, the escrowed client secret, and chunks, each pack decrypted at
// most once, into a private work directory (never held whole in memory).
// Where each chunk is goes into an SQLite file in that directory, so memory
// does not grow with the number of chunks.

import Foundation
import Seal

/// Reads one client's backups from one or more sources.
public final class Repository {
    let sources: [any RepositorySource]
    let opener: Opener
    let client: String
    /// Where decrypted packs are kept while needed (mode 0700, removed at the end).
    let workDirectory: String
    /// The client's chunk-ID key, from the escrowed secret (nil if missing).
    public private(set) var keys: ClientKeys?
    /// Every snapshot record found, oldest first.
    public private(set) var snapshots: [SnapshotRecord] = []
    /// Problems met while loading (unreadable records…).
    public private(set) var warnings: [String] = []
    /// Chunk → pack and length, from the records' pack listings; the restore plan.
    let work: WorkDatabase
    private var decryptedPacks: [String: OpenedPack] = [:]
    private var failedPacks: [String: String] = [:]
    private let decompressor = ChunkDecompressor()
    public private(set) var packsDecrypted = 0

    public init(sources: [any RepositorySource], opener: Opener, client: String) throws {
        precondition(!sources.isEmpty)
        self.sources = sources
        self.opener = opener
        self.client = client
        var template = Array((NSTemporaryDirectory() + "/fbk-restore-XXXXXX").utf8CString)
        guard let p = mkdtemp(&template) else { throw StoreError(.io, "cannot create a work directory in \(NSTemporaryDirectory())") }
        workDirectory = String(cString: p)
        do { work = try WorkDatabase(directory: workDirectory) } catch {
            try? FileManager.default.removeItem(atPath: workDirectory)
            throw error
        }
        try loadSecret()
        try work.batch { try loadSnapshots() }
    }

    deinit { try? FileManager.default.removeItem(atPath: workDirectory) }

    /// The first source holding `object`.
    func locate(_ object: String) -> String? {
        for s in sources { if let p = s.localPath(of: object) { return p } }
        return nil
    }

    private func loadSecret() throws {
        guard let path = locate(Layout.secretEscrow) else {
            warnings.append("no escrowed client secret (\(Layout.secretEscrow)): chunk contents cannot be checked against their IDs")
            return
        }
        let plain = try opener.open([UInt8](FileManager.default.contents(atPath: path) ?? Data())).plaintext
        let text = String(decoding: plain, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard let secret = Hex.decode(text), secret.count == 32 else {
            throw StoreError(.integrity, "the escrowed client secret \(path) is malformed")
        }
        keys = try ClientKeys(secret: secret)
    }

    private func loadSnapshots() throws {
        var seen = Set<String>()
        for source in sources {
            for object in source.list("snapshots") where object.hasSuffix(".snapshot") && !seen.contains(object) {
                guard let path = source.localPath(of: object) else { continue }
                do {
                    let sealed = [UInt8](FileManager.default.contents(atPath: path) ?? Data())
                    let plain = try opener.open(sealed).plaintext
                    // The listing goes straight into the work database, a pack at a
                    // time, once the record is whole and really this client's.
                    let record = try SignedDocument.decodeRecord(
                        from: plain, name: object, verifyingKey: keys.map { $0.signingKey().publicKey },
                        accept: { record in
                            guard record.client == client, Layout.record(record.id) == object else {
                                warnings.append("\(object) claims to be \(record.client)/\(record.id): ignored")
                                return false
                            }
                            return true
                        },
                        eachPack: { pack, chunks in try work.addPack(pack, chunks: chunks) })
                    guard let record else { continue }
                    seen.insert(object)
                    snapshots.append(record)
                    if let listing = record.listing { try loadListing(listing, of: record) }
                } catch let error as StoreError {
                    // The work database failed (a full TMPDIR): no restore can go on.
                    throw error
                } catch {
                    // This record cannot be read; the others still can.
                    warnings.append("\(object): \(error)")
                }
            }
        }
        snapshots.sort { ($0.started, $0.id) < ($1.started, $1.id) }
    }

    /// Puts a format-2 record's pack listing into the work database. Without
    /// it (no escrowed secret, a missing or damaged listing) the snapshot is
    /// still restorable: its packs are opened to find their chunks.
    /// - Throws: `StoreError` only if the work database fails.
    private func loadListing(_ listing: Catalog.Object, of record: SnapshotRecord) throws {
        guard let keys else { return }  // loadSecret has said why
        let unused = "its packs will be opened to find their chunks"
        guard listing.path == Layout.listing(record.id) else {
            warnings.append("\(Layout.record(record.id)) names \(listing.path) as its listing: ignored, \(unused)")
            return
        }
        // The first source whose copy is the one the record names.
        var found: [UInt8]?
        var present = false
        for source in sources {
            guard let path = source.localPath(of: listing.path) else { continue }
            present = true
            var st = stat()
            guard stat(path, &st) == 0, Int(st.st_size) == listing.size else { continue }
            let bytes = [UInt8](FileManager.default.contents(atPath: path) ?? Data())
            if bytes.count == listing.size && SHA256.hash(bytes).hex == listing.sha256 {
                found = bytes
                break
            }
        }
        guard let bytes = found else {
            warnings.append(present ? "\(listing.path) is not the listing its record names (size or SHA-256 differ): \(unused)"
                                    : "\(listing.path) is missing: \(unused)")
            return
        }
        do {
            let opened = try PackListingDocument.open(
                bytes, path: listing.path, keys: keys,
                accept: { document in
                    document.client == record.client && document.snapshot == record.id && document.root == record.root
                },
                eachPack: { pack, chunks in try work.addPack(pack, chunks: chunks) })
            if opened == nil { warnings.append("\(listing.path) belongs to another client, snapshot or root: \(unused)") }
        } catch let error as StoreError {
            throw error
        } catch {
            warnings.append("\(listing.path): \(error); \(unused)")
        }
    }

    /// A snapshot by ID, unique ID prefix, or `latest`.
    public func snapshot(_ reference: String) throws -> SnapshotRecord {
        if reference == "latest" {
            guard let s = snapshots.last else { throw StoreError(.config, "client \(client) has no readable snapshot") }
            return s
        }
        let matches = snapshots.filter { $0.id.hasPrefix(reference) }
        guard matches.count == 1 else {
            throw StoreError(.config, matches.isEmpty ? "no snapshot \(reference) for client \(client)"
                                                      : "\(reference) matches \(matches.count) snapshots; give more of the ID")
        }
        return matches[0]
    }

    /// The plaintext of a chunk, checked against its ID when the secret is known.
    /// - Throws: `StoreError.integrity` naming the pack when it is missing or damaged.
    public func chunk(_ id: ChunkID) throws -> (kind: ChunkKind, bytes: [UInt8]) {
        let pack = try packHolding(id)
        guard let opened = decryptedPacks[pack], let entry = opened.entries[id] else {
            throw StoreError(.integrity, "chunk \(id.shortDescription) is not in \(pack) although the snapshot lists it there")
        }
        let fd = open(opened.path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw StoreError(.io, "cannot read \(opened.path)") }
        defer { close(fd) }
        return (entry.kind, try Self.readChunk(entry, from: fd, pack: pack, keys: keys, decompressor: decompressor))
    }

    /// Reads a chunk from a decrypted pack, decompresses it and checks it
    /// against its ID when `keys` are known. Touches no shared state, so
    /// writer threads call it, each with its own decompressor.
    static func readChunk(_ entry: PackEntry, from fd: Int32, pack: String, keys: ClientKeys?,
                          decompressor: ChunkDecompressor) throws(StoreError) -> [UInt8] {
        let id = entry.id
        var stored = [UInt8](repeating: 0, count: entry.storedLength)
        guard pread(fd, &stored, entry.storedLength, off_t(entry.offset)) == entry.storedLength else {
            throw StoreError(.io, "cannot read chunk \(id.shortDescription) from the decrypted \(pack)")
        }
        let bytes: [UInt8]
        do {
            bytes = try decompressor.decompress(stored, form: entry.form, plainLength: entry.plainLength)
        } catch {
            throw StoreError(.integrity, "chunk \(id.shortDescription) in \(pack) does not decompress: \(error)")
        }
        if let keys, bytes.withUnsafeBytes({ keys.chunkID($0) }) != id {
            throw StoreError(.integrity, "chunk \(id.shortDescription) in \(pack) does not match its ID: the pack was replaced or forged")
        }
        return bytes
    }

    /// A pack decrypted (once) into the work directory, with its table.
    func decryptedPack(_ pack: String) throws(StoreError) -> OpenedPack {
        try decrypt(pack)
        guard let opened = decryptedPacks[pack] else { throw StoreError(.integrity, "\(pack) cannot be opened") }
        return opened
    }

    /// The pack holding `id`, decrypted (once) into the work directory.
    func packHolding(_ id: ChunkID) throws -> String {
        guard let pack = try chunkLocation(id)?.path else {
            throw StoreError(.integrity, "no pack holds chunk \(id.shortDescription)")
        }
        try decrypt(pack)
        return pack
    }

    /// Where a chunk is (its pack's row in the work database and path) and
    /// its plaintext length, without decrypting; packs no record lists are
    /// opened once to find chunks the listings lack. Nil if no pack holds it.
    func chunkLocation(_ id: ChunkID) throws -> (pack: Int, path: String, length: Int)? {
        if let l = try work.location(of: id) { return l }
        try scanUnlistedPacks()
        return try work.location(of: id)
    }

    /// A pack decrypted into the work directory, with its table.
    public struct OpenedPack: Sendable {
        let path: String
        let entries: [ChunkID: PackEntry]
    }

    private func decrypt(_ pack: String) throws(StoreError) {
        if decryptedPacks[pack] != nil { return }
        if let reason = failedPacks[pack] { throw StoreError(.integrity, reason) }
        try adopt(pack, openPack(pack))
    }

    /// Takes a pack opened by `openPack` (perhaps on another thread, ahead
    /// of need) as decrypted, or remembers why it could not be.
    public func adopt(_ pack: String, _ opened: Result<OpenedPack, StoreError>) throws(StoreError) {
        switch opened {
        case .success(let o):
            packsDecrypted += 1
            decryptedPacks[pack] = o
        case .failure(let error):
            failedPacks[pack] = error.message
            throw error
        }
    }

    /// Decrypts a pack into the work directory from the first source whose
    /// copy opens and has a sound table. Touches no state of the repository
    /// but the work directory, so it may run on another thread.
    public func openPack(_ pack: String) -> Result<OpenedPack, StoreError> {
        let holders = sources.compactMap { $0.localPath(of: pack) }
        guard !holders.isEmpty else {
            return .failure(StoreError(.integrity, "\(pack) is missing from \(sources.map(\.name).joined(separator: " and "))"))
        }
        let target = workDirectory + "/" + (pack as NSString).lastPathComponent
        var firstError: (any Error)?
        // Another source may hold an intact copy.
        for holder in holders {
            do {
                _ = try opener.open(fileAt: holder, to: target)
                let plain = try readPackTable(target, name: pack)
                return .success(OpenedPack(path: target, entries: Dictionary(plain.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })))
            } catch {
                unlink(target)
                if firstError == nil { firstError = error }
            }
        }
        return .failure(StoreError(.integrity, "\(pack) cannot be opened: \(firstError!)"))
    }

    /// Whether a pack is decrypted already (or known not to open).
    public func isDecrypted(_ pack: String) -> Bool { decryptedPacks[pack] != nil || failedPacks[pack] != nil }

    /// Drops a decrypted pack from the work directory once it is no longer needed.
    public func release(pack: String) {
        if let p = decryptedPacks.removeValue(forKey: pack) { unlink(p.path) }
    }

    /// Reads only a decrypted pack's trailer and table (pread), never the whole pack.
    private func readPackTable(_ path: String, name: String) throws -> [PackEntry] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw StoreError(.io, "cannot read the decrypted \(name)") }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_size >= 24, Int(st.st_size) <= PackFormat.maxPackLength else {
            throw StoreError(.integrity, "\(name) has an implausible size")
        }
        let size = Int(st.st_size)
        var trailer = [UInt8](repeating: 0, count: 16)
        guard pread(fd, &trailer, 16, off_t(size - 16)) == 16 else { throw StoreError(.io, "cannot read \(name)") }
        let count = Int(trailer[0]) | Int(trailer[1]) << 8 | Int(trailer[2]) << 16 | Int(trailer[3]) << 24
        let tableLength = count * 50
        guard tableLength + 24 <= size else { throw StoreError(.integrity, "\(name) is malformed: its table does not fit") }
        // Magic, then table and trailer: parseTable checks them against each other
        // with the data area represented only by its length.
        var head = [UInt8](repeating: 0, count: 8)
        var tail = [UInt8](repeating: 0, count: tableLength + 16)
        guard pread(fd, &head, 8, 0) == 8, pread(fd, &tail, tail.count, off_t(size - tail.count)) == tail.count else {
            throw StoreError(.io, "cannot read \(name)")
        }
        do {
            return try PackFormat.parseTable(head: head, dataLength: size - 8 - tail.count, tail: tail, name: name)
        } catch {
            throw StoreError(.integrity, error.description)
        }
    }

    /// Chunks written by a run that stored packs but no record: find them by
    /// opening packs no record lists (once).
    private var scannedUnlisted = false
    private func scanUnlistedPacks() throws {
        guard !scannedUnlisted else { return }
        scannedUnlisted = true
        for source in sources {
            for dir in source.list("packs") {
                for pack in source.list(dir) where pack.hasSuffix(".pack") {
                    guard try !work.isListed(pack) else { continue }
                    guard (try? decrypt(pack)) != nil, let opened = decryptedPacks[pack] else { continue }
                    try work.addPack(pack, chunks: opened.entries.map { ($0.key, $0.value.plainLength) })
                }
            }
        }
    }

    /// The entries of a directory tree chunk.
    /// A large directory's tree lists parts; their entries are joined, and
    /// must stay in name order across parts.
    public func tree(_ id: ChunkID) throws -> [TreeEntry] {
        let bytes = try treeChunk(id)
        let parts: [ChunkID]?
        do { parts = try TreeFormat.parseParts(bytes, name: "tree \(id.shortDescription)") } catch {
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
    public func lookup(_ snapshot: SnapshotRecord, path: String) throws -> (entry: TreeEntry?, tree: [TreeEntry]?) {
        try lookup(snapshot, components: path.split(separator: "/").map { Array($0.utf8) })
    }

    /// The entry at a path given as name bytes.
    public func lookup(_ snapshot: SnapshotRecord, components: [[UInt8]]) throws -> (entry: TreeEntry?, tree: [TreeEntry]?) {
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
