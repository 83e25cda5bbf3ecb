// Snapshot records and catalogs: one line of JSON, then one line with the
// client's Ed25519 signature of that line (FORMAT.md, "Snapshots").

import FoundationEssentials
import Glibc
import Seal
import Chunker
import Platform

/// The JSON line and its signature.
public enum SignedDocument {
    static let prefix = "ed25519 "
    /// A record lists every chunk its run stored, about 90 bytes each: this
    /// allows some six million, a first snapshot of as many small files.
    static let maxSize = 512 << 20

    /// Encodes `value` as compact JSON with sorted keys and signs it.
    public static func encode<T: Encodable>(_ value: T, key: SigningKey) -> [UInt8] {
        sign(json(value), key: key)
    }

    /// Compact JSON with sorted keys, the form every document uses.
    static func json<T: Encodable>(_ value: T) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return [UInt8](try! encoder.encode(value))
    }

    /// The JSON line followed by its signature line.
    static func sign(_ body: [UInt8], key: SigningKey) -> [UInt8] {
        var document = body
        sign(&document, key: key)
        return document
    }

    /// Appends the signature line to a JSON line in place (no copy of a large record).
    static func sign(_ body: inout [UInt8], key: SigningKey) {
        let signature = key.sign(body)
        body += Array("\n\(prefix)\(Hex.encode(signature))\n".utf8)
    }

    /// Splits a document into its JSON line and signature, and decodes it.
    /// - Parameter verifyingKey: when given, the signature must verify.
    /// - Throws: `FormatError` for anything malformed or a bad signature.
    public static func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8], name: String,
                                            verifyingKey: VerifyingKey?) throws(FormatError) -> (T, signatureValid: Bool?) {
        let (bodyEnd, valid) = try verifiedBody(bytes, name: name, verifyingKey: verifyingKey)
        return (try decodeJSON(T.self, Data(bytes[..<bodyEnd]), name: name), valid)
    }

    /// The length of the JSON line, once the document's shape is checked and
    /// (with a key) its signature verified.
    private static func verifiedBody(_ bytes: [UInt8], name: String,
                                     verifyingKey: VerifyingKey?) throws(FormatError) -> (Int, signatureValid: Bool?) {
        guard bytes.count <= maxSize else { throw FormatError(object: name, problem: "larger than \(maxSize >> 20) MiB") }
        let newline = UInt8(ascii: "\n")
        guard let first = bytes.firstIndex(of: newline), bytes.last == newline,
              bytes[(first + 1)...].firstIndex(of: newline) == bytes.count - 1,
              bytes[(first + 1)...].starts(with: Array(prefix.utf8)),
              let signature = Hex.decode(String(decoding: bytes[(first + 1 + prefix.utf8.count)..<(bytes.count - 1)], as: UTF8.self)),
              signature.count == 64 else {
            throw FormatError(object: name, problem: "not a JSON line followed by an ed25519 signature line")
        }
        var valid: Bool? = nil
        if let verifyingKey {
            valid = bytes.withUnsafeBytes { verifyingKey.verify(signature, of: UnsafeRawBufferPointer(rebasing: $0[..<first])) }
            guard valid == true else { throw FormatError(object: name, problem: "the signature does not verify with the client's signing key") }
        }
        return (first, valid)
    }

    private static func decodeJSON<T: Decodable>(_ type: T.Type, _ data: Data, name: String) throws(FormatError) -> T {
        do { return try JSONDecoder().decode(T.self, from: data) } catch {
            throw FormatError(object: name, problem: "JSON does not match the format: \(error)")
        }
    }

    /// Decodes a snapshot record without holding a format-1 pack listing
    /// (`new_packs`) decoded: the record comes back with `newPacks` empty,
    /// and `eachPack` then gets the listing a pack at a time, but only once
    /// the whole document has been checked (so a malformed record hands
    /// over nothing). A format-2 record names its listing instead.
    package static func decodeRecord(from bytes: [UInt8], name: String, verifyingKey: VerifyingKey?,
                             accept: (SnapshotRecord) -> Bool,
                             eachPack: (String, [(id: ChunkID, length: Int)]) throws -> Void) throws -> SnapshotRecord? {
        let (bodyEnd, _) = try verifiedBody(bytes, name: name, verifyingKey: verifyingKey)
        return try decodeStreamingPacks(SnapshotRecord.self, from: bytes, end: bodyEnd, key: "new_packs", name: name,
                                        accept: accept, eachPack: eachPack)
    }

    /// Decodes the JSON object `bytes[..<end]` whose top-level array `key`
    /// (if present) lists packs and their chunks, which may be large: the
    /// rest is decoded by Foundation with that array empty, and the array is
    /// handed to `eachPack` a pack at a time, once the whole text is checked
    /// and `accept` took the rest.
    static func decodeStreamingPacks<T: Decodable>(
        _ type: T.Type, from bytes: [UInt8], end: Int, key listingKey: String, name: String,
        accept: (T) -> Bool, eachPack: (String, [(id: ChunkID, length: Int)]) throws -> Void) throws -> T? {
        try decodeStreaming(type, from: bytes, end: end, key: listingKey, name: name, accept: accept) { scanner, deliver in
            try scanner.packListing(deliver ? eachPack : { _, _ in })
        }
    }

    /// A verified catalog whose `packs` are handed to `eachPack` one at a
    /// time instead of being decoded into an array (a catalog lists every
    /// pack its snapshot needs: prune reads a thousand of them). The
    /// catalog returned has `packs` empty.
    package static func decodeCatalog(from bytes: [UInt8], name: String, verifyingKey: VerifyingKey?,
                                      eachPack: (Catalog.Object) throws -> Void) throws -> Catalog {
        let (bodyEnd, _) = try verifiedBody(bytes, name: name, verifyingKey: verifyingKey)
        return try decodeStreaming(Catalog.self, from: bytes, end: bodyEnd, key: "packs", name: name, accept: { _ in true }) { scanner, deliver in
            try scanner.catalogObjects(deliver ? eachPack : { _ in })
        }!
    }

    /// Decodes the JSON object `bytes[..<end]` whose top-level array `key`
    /// (if present) may be large: the rest is decoded by Foundation with
    /// that array empty, and `array` reads the array, first to check it
    /// (`deliver` false), then, once the whole text is checked and `accept`
    /// took the rest, to hand it over.
    static func decodeStreaming<T: Decodable>(
        _ type: T.Type, from bytes: [UInt8], end: Int, key listingKey: String, name: String,
        accept: (T) -> Bool, array: (inout JSONScanner, Bool) throws -> Void) throws -> T? {
        // Find the top-level array, checking its syntax on the way.
        var scanner = JSONScanner(bytes, from: 0, to: end, name: name)
        var listing: Range<Int>?
        try scanner.expect(UInt8(ascii: "{"))
        if !scanner.consume(UInt8(ascii: "}")) {
            repeat {
                let key = try scanner.string()
                try scanner.expect(UInt8(ascii: ":"))
                scanner.skipSpace()
                let start = scanner.at
                if key == listingKey && listing == nil {
                    try array(&scanner, false)
                    listing = start..<scanner.at
                } else {
                    try scanner.skipValue()
                }
            } while scanner.consume(UInt8(ascii: ","))
            try scanner.expect(UInt8(ascii: "}"))
        }
        scanner.skipSpace()
        guard scanner.atEnd else { throw scanner.fail("text after the document") }
        // The rest is small: Foundation decodes it with the listing left empty.
        var rest = Data(bytes[..<(listing?.lowerBound ?? end)])
        if let listing {
            rest.append(contentsOf: Array("[]".utf8))
            rest.append(contentsOf: bytes[listing.upperBound..<end])
        }
        let value = try decodeJSON(T.self, rest, name: name)
        guard accept(value) else { return nil }
        if let listing {
            var items = JSONScanner(bytes, from: listing.lowerBound, to: listing.upperBound, name: name)
            try array(&items, true)
        }
        return value
    }
}

/// What a snapshot records (sealed: only the private key reads it).
public struct SnapshotRecord: Codable, Sendable, Equatable {
    /// 2 names a pack listing (`listing`); 1 lists packs inline (`new_packs`).
    public var format: Int = 2
    public var id: SnapshotID
    public var client: String
    public var host: String
    /// RFC 3339 UTC times.
    public var started: String
    public var finished: String
    public var paths: [String]
    /// Hex ID of the root tree chunk.
    public var root: String
    public var chunker: ChunkerRecord
    public var stats: SnapshotStats
    /// Hex Ed25519 public key of the client.
    public var signingKey: String
    /// Format 1: the packs this run created and the chunks in each, so a
    /// restore can find a chunk's pack without opening every pack.
    public var newPacks: [PackListing]? = nil
    /// Format 2: the sealed pack listing that holds the same, readable with
    /// the escrowed client secret.
    public var listing: Catalog.Object? = nil

    package init(format: Int = 2, id: SnapshotID, client: String, host: String, started: String, finished: String, paths: [String],
                 root: String, chunker: ChunkerRecord, stats: SnapshotStats, signingKey: String,
                 newPacks: [PackListing]? = nil, listing: Catalog.Object? = nil) {
        (self.format, self.id, self.client, self.host, self.started, self.finished) = (format, id, client, host, started, finished)
        (self.paths, self.root, self.chunker, self.stats, self.signingKey) = (paths, root, chunker, stats, signingKey)
        (self.newPacks, self.listing) = (newPacks, listing)
    }

    enum CodingKeys: String, CodingKey {
        case format, id, client, host, started, finished, paths, root, chunker, stats, listing
        case signingKey = "signing_key"
        case newPacks = "new_packs"
    }
}

extension SnapshotRecord {
    /// The most tree entries a walk of this snapshot may meet (FORMAT.md 7):
    /// what the signed record says it holds, plus the directories leading
    /// to its paths and a small margin. A subtree named many times (legal:
    /// identical directories dedupe) cannot make a walk go on past it.
    public var entryBudget: Int {
        stats.files + stats.directories + stats.otherEntries + paths.reduce(0) { $0 + $1.split(separator: "/").count } + 16
    }
}

/// One pack and its chunks: `[hex chunk ID, kind, plain length]` each.
public struct PackListing: Codable, Sendable, Equatable {
    public var path: String
    public var chunks: [ListedChunk]

    public init(path: String, chunks: [ListedChunk]) {
        self.path = path
        self.chunks = chunks
    }

    public struct ListedChunk: Codable, Sendable, Equatable {
        public var id: String
        public var kind: Int
        public var length: Int

        public init(id: String, kind: Int, length: Int) {
            self.id = id
            self.kind = kind
            self.length = length
        }

        public init(from decoder: Decoder) throws {
            var c = try decoder.unkeyedContainer()
            id = try c.decode(String.self)
            kind = try c.decode(Int.self)
            length = try c.decode(Int.self)
        }

        public func encode(to encoder: Encoder) throws {
            var c = encoder.unkeyedContainer()
            try c.encode(id)
            try c.encode(kind)
            try c.encode(length)
        }
    }
}

public struct ChunkerRecord: Codable, Sendable, Equatable {
    public var min: Int, avg: Int, max: Int, window: Int

    package init(min: Int, avg: Int, max: Int, window: Int) { (self.min, self.avg, self.max, self.window) = (min, avg, max, window) }
}

public struct SnapshotStats: Codable, Sendable, Equatable {
    public var files = 0
    public var directories = 0
    public var otherEntries = 0
    public var bytes: UInt64 = 0
    public var newChunks = 0
    public var newBytes: UInt64 = 0
    public var packs = 0

    package init() {}

    enum CodingKeys: String, CodingKey {
        case files, directories, bytes, packs
        case otherEntries = "other_entries"
        case newChunks = "new_chunks"
        case newBytes = "new_bytes"
    }
}

/// The plaintext, signed list of what a snapshot needs, so a server can
/// check completeness without any key. Says nothing about contents.
public struct Catalog: Codable, Sendable, Equatable {
    public struct Object: Codable, Sendable, Equatable, Hashable {
        /// Path relative to the client directory, e.g. `packs/ab/ab12….pack`.
        public var path: String
        public var size: Int
        /// Hex SHA-256 of the stored (sealed) bytes.
        public var sha256: String

        public init(path: String, size: Int, sha256: String) {
            self.path = path
            self.size = size
            self.sha256 = sha256
        }
    }

    public var format: Int = 1
    public var client: String
    public var snapshot: SnapshotID
    /// RFC 3339 UTC time the client finished (a claim; servers trust their own mtime).
    public var created: String
    /// The sealed snapshot record.
    public var record: Object
    /// The secret-keyed pack listing (for the index rebuild).
    public var listing: Object?
    /// Every pack the snapshot needs, sorted by path.
    public var packs: [Object]
    /// Bytes the snapshot added (new packs).
    public var addedBytes: UInt64
    /// Hex Ed25519 public key that signed this catalog.
    public var signingKey: String
    /// The client's reuse horizon in seconds: it deduplicated only against
    /// packs a snapshot of its own needed within this long (FORMAT.md,
    /// "Retention"). Prune must keep every snapshot received within it.
    /// Nil in catalogs written before retention.
    public var reuseHorizon: Int?
    /// The certificates every pack of the snapshot is sealed to. Nil in
    /// catalogs written before re-keying.
    public var recipients: [Recipient]?

    /// A certificate the snapshot's objects are sealed to, named as the
    /// operator pins it (SHA-256 of the DER certificate) and as CMS names
    /// it in each object's plaintext header (DER IssuerAndSerialNumber).
    public struct Recipient: Codable, Sendable, Equatable, Hashable {
        /// Hex SHA-256 of the certificate's DER encoding.
        public var fingerprint: String
        /// Hex DER `IssuerAndSerialNumber`.
        public var issuerSerial: String

        public init(fingerprint: String, issuerSerial: String) {
            self.fingerprint = fingerprint
            self.issuerSerial = issuerSerial
        }

        enum CodingKeys: String, CodingKey {
            case fingerprint
            case issuerSerial = "issuer_serial"
        }
    }

    enum CodingKeys: String, CodingKey {
        case format, client, snapshot, created, record, packs, listing, recipients
        case addedBytes = "added_bytes"
        case signingKey = "signing_key"
        case reuseHorizon = "reuse_horizon"
    }

    public init(client: String, snapshot: SnapshotID, created: String, record: Object, listing: Object? = nil,
                packs: [Object], addedBytes: UInt64, signingKey: String, reuseHorizon: Int? = nil, recipients: [Recipient]? = nil) {
        self.reuseHorizon = reuseHorizon
        self.recipients = recipients
        self.client = client
        self.snapshot = snapshot
        self.created = created
        self.record = record
        self.listing = listing
        self.packs = packs
        self.addedBytes = addedBytes
        self.signingKey = signingKey
    }
}

/// New snapshot IDs, and the time formats of documents and names
/// (object paths are `ObjectName`'s).
public enum Timestamp {
    /// A new snapshot ID: UTC start time and 8 random bytes, e.g.
    /// `20261127T030000Z-0123456789abcdef`.
    public static func newSnapshotID(at date: Date) -> SnapshotID {
        SnapshotID("\(compactTime(date))-\(Hex.encode(secureRandomBytes(8)))")!
    }

    /// `yyyyMMddTHHmmssZ` in UTC.
    /// `yyyyMMddTHHmmssZ` back to a time; nil for anything else.
    package static func parseCompact(_ text: String) -> Date? {
        let b = Array(text.utf8)
        guard b.count == 16, b[8] == UInt8(ascii: "T"), b[15] == UInt8(ascii: "Z") else { return nil }
        func n(_ r: Range<Int>) -> Int? {
            var v = 0
            for i in r { guard (48...57).contains(b[i]) else { return nil }; v = v * 10 + Int(b[i] - 48) }
            return v
        }
        guard let y = n(0..<4), let mo = n(4..<6), let d = n(6..<8), let h = n(9..<11), let mi = n(11..<13), let s = n(13..<15) else { return nil }
        return parseRFC3339(String(cFormat: "%04ld-%02ld-%02ldT%02ld:%02ld:%02ldZ", y, mo, d, h, mi, s))
    }

    package static func compactTime(_ date: Date) -> String {
        let t = utc(date)
        return digits(t.tm_year + 1900, 4) + digits(t.tm_mon + 1, 2) + digits(t.tm_mday, 2) + "T"
            + digits(t.tm_hour, 2) + digits(t.tm_min, 2) + digits(t.tm_sec, 2) + "Z"
    }

    /// RFC 3339 in UTC with milliseconds, e.g. `2026-11-27T03:00:00.123Z`.
    public static func rfc3339(_ date: Date) -> String {
        let t = utc(date)
        let milliseconds = Int32((date.timeIntervalSince1970 - date.timeIntervalSince1970.rounded(.down)) * 1000)
        return digits(t.tm_year + 1900, 4) + "-" + digits(t.tm_mon + 1, 2) + "-" + digits(t.tm_mday, 2) + "T"
            + digits(t.tm_hour, 2) + ":" + digits(t.tm_min, 2) + ":" + digits(t.tm_sec, 2) + "." + digits(milliseconds, 3) + "Z"
    }

    // Formatted by hand: Foundation's date formatters load ICU's locale data,
    // megabytes of resident memory for a fixed format.
    private static func utc(_ date: Date) -> tm {
        var seconds = time_t(date.timeIntervalSince1970.rounded(.down))
        var t = tm()
        gmtime_r(&seconds, &t)
        return t
    }

    private static func digits(_ value: Int32, _ width: Int) -> String {
        let text = String(value)
        return String(repeating: "0", count: max(0, width - text.count)) + text
    }
}

/// What a pack listing holds: the snapshot's root and the packs the run
/// created with their chunks. Encrypted with the client's listing key, so
/// the index can be rebuilt with the client secret alone (and the operator
/// reads it through the escrowed secret). Written by `PackListingWriter`.
public struct PackListingDocument: Codable, Sendable, Equatable {
    public var format: Int = 2
    public var client: String
    public var snapshot: SnapshotID
    public var root: String
    public var packs: [PackListing]

    /// Format 1: JSON in the box; format 2: one zstd frame of JSON.
    static let magic1 = Array("FBKLST01".utf8)

    public init(client: String, snapshot: SnapshotID, root: String, packs: [PackListing]) {
        self.client = client
        self.snapshot = snapshot
        self.root = root
        self.packs = packs
    }

    /// Seals the whole listing in memory, as `PackListingWriter` writes one
    /// during a run ("FBKLST02").
    /// - Throws: `FormatError` for a chunk whose ID or kind is not valid.
    public func sealed(keys: ClientKeys) throws -> [UInt8] {
        let name = ObjectName.listing(snapshot).path
        var out: [UInt8] = []
        let writer = try PackListingWriter(client: client, snapshot: snapshot, keys: keys) { out.append(contentsOf: $0) }
        for pack in packs {
            try writer.append(path: pack.path, chunks: try pack.chunks.map { c throws(FormatError) in
                guard let id = ChunkID(hex: c.id), let kind = UInt8(exactly: c.kind).flatMap(ChunkKind.init(rawValue:)) else {
                    throw FormatError(object: name, problem: "chunk [\(c.id), \(c.kind)] is not a valid ID and kind")
                }
                return (id, kind, c.length)
            })
        }
        _ = try writer.finish(root: root)
        return out
    }

    /// Opens and decodes a whole listing.
    public static func open(_ bytes: [UInt8], path: String, keys: ClientKeys) throws -> PackListingDocument {
        let json = try plaintext(bytes, path: path, keys: keys)
        do { return try JSONDecoder().decode(PackListingDocument.self, from: Data(json)) } catch {
            throw FormatError(object: path, problem: "JSON does not match the format: \(error)")
        }
    }

    /// Opens a listing and hands its packs to `eachPack` one at a time,
    /// once the whole document is checked and `accept` took its header.
    package static func open(_ bytes: [UInt8], path: String, keys: ClientKeys, accept: (PackListingDocument) -> Bool,
                     eachPack: (String, [(id: ChunkID, length: Int)]) throws -> Void) throws -> PackListingDocument? {
        let json = try plaintext(bytes, path: path, keys: keys)
        return try SignedDocument.decodeStreamingPacks(PackListingDocument.self, from: json, end: json.count, key: "packs",
                                                       name: path, accept: accept, eachPack: eachPack)
    }

    /// The listing's JSON: authenticated with the listing key and the
    /// object's path, then (format 2) decompressed, never past
    /// `SignedDocument.maxSize`.
    static func plaintext(_ bytes: [UInt8], path: String, keys: ClientKeys) throws -> [UInt8] {
        let magic = Array(bytes.prefix(8))
        guard magic == magic1 || magic == PackListingWriter.magic else {
            throw FormatError(object: path, problem: "does not start with FBKLST01 or FBKLST02")
        }
        let box = try SymmetricBox.open(Array(bytes.dropFirst(8)), key: keys.listingKey, associatedData: magic + Array(path.utf8))
        guard magic == PackListingWriter.magic else { return box }
        var json: [UInt8] = []
        let decompressor = StreamDecompressor()
        do {
            try box.withUnsafeBytes { frame in
                try decompressor.decompress(frame) { piece in
                    guard json.count + piece.count <= SignedDocument.maxSize else {
                        throw FormatError(object: path, problem: "decompresses to more than \(SignedDocument.maxSize >> 20) MiB")
                    }
                    json.append(contentsOf: piece)
                }
            }
            try decompressor.finish()
        } catch let error as FormatError {
            throw error
        } catch {
            throw FormatError(object: path, problem: "its compressed JSON is damaged: \(error)")
        }
        return json
    }
}
