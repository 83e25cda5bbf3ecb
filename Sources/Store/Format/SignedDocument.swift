// Snapshot records and catalogs: one line of JSON, then one line with the
// client's Ed25519 signature of that line (FORMAT.md, "Snapshots").

import Foundation
import Seal

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

    /// Decodes a snapshot record without holding its pack listing decoded:
    /// the record comes back with `newPacks` empty, and `eachPack` then gets
    /// the listing a pack at a time, but only once the whole document has
    /// been checked (so a malformed record hands over nothing).
    static func decodeRecord(from bytes: [UInt8], name: String, verifyingKey: VerifyingKey?,
                             accept: (SnapshotRecord) -> Bool,
                             eachPack: (String, [(id: ChunkID, length: Int)]) throws -> Void) throws -> SnapshotRecord? {
        let (bodyEnd, _) = try verifiedBody(bytes, name: name, verifyingKey: verifyingKey)
        // Find the top-level "new_packs" array, checking its syntax on the way.
        var scanner = JSONScanner(bytes, from: 0, to: bodyEnd, name: name)
        var listing: Range<Int>?
        try scanner.expect(UInt8(ascii: "{"))
        if !scanner.consume(UInt8(ascii: "}")) {
            repeat {
                let key = try scanner.string()
                try scanner.expect(UInt8(ascii: ":"))
                scanner.skipSpace()
                let start = scanner.at
                if key == "new_packs" && listing == nil {
                    try scanner.packListing { _, _ in }
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
        var rest = Data(bytes[..<(listing?.lowerBound ?? bodyEnd)])
        if let listing {
            rest.append(contentsOf: Array("[]".utf8))
            rest.append(contentsOf: bytes[listing.upperBound..<bodyEnd])
        }
        var record = try decodeJSON(SnapshotRecord.self, rest, name: name)
        record.newPacks = []
        guard accept(record) else { return nil }
        if let listing {
            var packs = JSONScanner(bytes, from: listing.lowerBound, to: listing.upperBound, name: name)
            try packs.packListing(eachPack)
        }
        return record
    }
}

/// What a snapshot records (sealed: only the private key reads it).
public struct SnapshotRecord: Codable, Sendable, Equatable {
    public var format: Int = 1
    public var id: String
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
    /// The packs this run created and the chunks in each, so a restore can
    /// find a chunk's pack without opening every pack.
    public var newPacks: [PackListing] = []

    enum CodingKeys: String, CodingKey {
        case format, id, client, host, started, finished, paths, root, chunker, stats
        case signingKey = "signing_key"
        case newPacks = "new_packs"
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
}

public struct SnapshotStats: Codable, Sendable, Equatable {
    public var files = 0
    public var directories = 0
    public var otherEntries = 0
    public var bytes: UInt64 = 0
    public var newChunks = 0
    public var newBytes: UInt64 = 0
    public var packs = 0

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
    public var snapshot: String
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

    enum CodingKeys: String, CodingKey {
        case format, client, snapshot, created, record, packs, listing
        case addedBytes = "added_bytes"
        case signingKey = "signing_key"
    }

    public init(client: String, snapshot: String, created: String, record: Object, listing: Object? = nil,
                packs: [Object], addedBytes: UInt64, signingKey: String) {
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

/// Where objects live under a client's directory on a mirror.
public enum Layout {
    public static func pack(_ name: Digest) -> String { "packs/\(name.hex.prefix(2))/\(name.hex).pack" }
    public static func record(_ id: String) -> String { "snapshots/\(id).snapshot" }
    public static func catalog(_ id: String) -> String { "snapshots/\(id).catalog" }
    public static func listing(_ id: String) -> String { "snapshots/\(id).listing" }
    /// The client secret, sealed to the operator's certificates (written once).
    public static let secretEscrow = "keys/client-secret.cms"

    /// A new snapshot ID: UTC start time and 8 random bytes, e.g.
    /// `20261127T030000Z-0123456789abcdef`.
    public static func newSnapshotID(at date: Date) -> String {
        "\(compactTime(date))-\(Hex.encode(secureRandomBytes(8)))"
    }

    static func compactTime(_ date: Date) -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        return f.string(from: date)
    }

    static func rfc3339(_ date: Date) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f.string(from: date)
    }
}

/// What a pack listing holds: the snapshot's root and the packs the run
/// created with their chunks. Encrypted with the client's listing key, so
/// the index can be rebuilt with the client secret alone.
public struct PackListingDocument: Codable, Sendable, Equatable {
    public var format: Int = 1
    public var client: String
    public var snapshot: String
    public var root: String
    public var packs: [PackListing]

    static let magic = Array("FBKLST01".utf8)

    public init(client: String, snapshot: String, root: String, packs: [PackListing]) {
        self.client = client
        self.snapshot = snapshot
        self.root = root
        self.packs = packs
    }

    /// "FBKLST01" || AES-256-GCM box; the associated data is the magic and the object path.
    public func sealed(keys: ClientKeys) throws -> [UInt8] {
        try Self.seal(SignedDocument.json(self), snapshot: snapshot, keys: keys)
    }

    /// Seals a listing whose packs come from a run's log (this document's
    /// `packs` must be empty: the log's JSON takes their place).
    /// The magic, the nonce and the JSON are laid out in one buffer and the
    /// JSON encrypted in place: the listing exists once in memory.
    func sealed(keys: ClientKeys, packs log: NewPackLog) throws -> [UInt8] {
        precondition(packs.isEmpty)
        var box = Self.magic + [UInt8](repeating: 0, count: SymmetricBox.nonceLength)
        JSONText.splice(SignedDocument.json(self), emptyArrayKey: "packs", into: &box, reserving: log.jsonLengthEstimate + 16) {
            log.appendJSON(to: &$0)
        }
        try SymmetricBox.seal(inPlace: &box, nonceAt: Self.magic.count, key: keys.listingKey,
                              associatedData: Self.magic + Array(Layout.listing(snapshot).utf8))
        return box
    }

    private static func seal(_ json: [UInt8], snapshot: String, keys: ClientKeys) throws -> [UInt8] {
        let aad = magic + Array(Layout.listing(snapshot).utf8)
        return magic + (try SymmetricBox.seal(json, key: keys.listingKey, associatedData: aad))
    }

    public static func open(_ bytes: [UInt8], path: String, keys: ClientKeys) throws -> PackListingDocument {
        guard bytes.starts(with: magic) else { throw FormatError(object: path, problem: "does not start with FBKLST01") }
        let plain = try SymmetricBox.open(Array(bytes.dropFirst(8)), key: keys.listingKey, associatedData: magic + Array(path.utf8))
        do { return try JSONDecoder().decode(PackListingDocument.self, from: Data(plain)) } catch {
            throw FormatError(object: path, problem: "JSON does not match the format: \(error)")
        }
    }
}
