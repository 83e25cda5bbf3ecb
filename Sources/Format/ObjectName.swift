// The names of objects under a client's directory (FORMAT.md 2 and 12):
// the one place that builds them and the one place that parses them. A
// reader believes a name only once it has the exact form a writer gives;
// anything else on a server is a stranger.

import Seal

/// What an object is, which decides the directory it lives in.
public enum ObjectKind: String, Sendable, CaseIterable, Codable {
    /// `packs/ab/<64 hex>.pack`: sealed chunks, named by the SHA-256 of their bytes.
    case pack
    /// `snapshots/<ID>.snapshot`: the sealed, signed snapshot record.
    case record
    /// `snapshots/<ID>.catalog`: the plaintext, signed list of a snapshot's objects.
    case catalog
    /// `snapshots/<ID>.listing`: which chunk is in which pack, sealed with the client secret.
    case listing
    /// `keys/client-secret.cms`: the client secret sealed to the operator.
    case escrow
    /// `blobs/KIND-TIME[-R][.partNNNN].cms`: a device's sealed stream, or one part of it.
    case blob
    /// `blobs/KIND-TIME[-R].manifest`: the list of a device blob's parts.
    case blobManifest

    /// The directory under the client's directory that holds this kind.
    public var directory: String {
        switch self {
        case .pack: "packs"
        case .record, .catalog, .listing: "snapshots"
        case .escrow: "keys"
        case .blob, .blobManifest: "blobs"
        }
    }

    /// Whether objects of this kind sit one directory deeper (packs under their first two hex digits).
    public var isFannedOut: Bool { self == .pack }
}

/// A snapshot's ID: the client's UTC start time and 8 random bytes,
/// `YYYYMMDDTHHMMSSZ-` and 16 lower-case hex digits (FORMAT.md 2). Only a
/// well-formed one can be made, so a document naming anything else does
/// not decode. Its text sorts by time, to the second.
public struct SnapshotID: Hashable, Comparable, Sendable, CustomStringConvertible, Codable, ExpressibleByStringLiteral {
    public let text: String

    public init?(_ text: String) {
        guard ObjectName.isSnapshotID(text) else { return nil }
        self.text = text
    }

    /// An ID written in the source (tests, fixtures): a malformed one is a programming error.
    public init(stringLiteral text: String) {
        precondition(ObjectName.isSnapshotID(text), "\(text) is not a snapshot ID")
        self.text = text
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let id = SnapshotID(text) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "\(text.prefix(40)) is not a snapshot ID")
        }
        self = id
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(text)
    }

    public var description: String { text }
    public static func < (a: SnapshotID, b: SnapshotID) -> Bool { a.text < b.text }
}

/// A pack's name: the SHA-256 of its sealed bytes, which anyone can check
/// without a key. Not a chunk ID, which is keyed with the client secret.
public struct PackID: Hashable, Sendable, CustomStringConvertible {
    public let sha256: Digest
    public init(sha256: Digest) { self.sha256 = sha256 }
    public var hex: String { sha256.hex }
    public var description: String { hex }
}

/// A server path under a client's directory, known to have the exact form
/// its kind gives it.
public struct ObjectName: Hashable, Sendable, CustomStringConvertible, Comparable {
    public let kind: ObjectKind
    /// Relative to the client's directory, e.g. `snapshots/20261127T030000Z-0123456789abcdef.catalog`.
    public let path: String

    public var description: String { path }
    public static func < (a: ObjectName, b: ObjectName) -> Bool { a.path < b.path }

    private init(_ kind: ObjectKind, _ path: String) {
        self.kind = kind
        self.path = path
    }

    // MARK: Building

    public static func pack(_ id: PackID) -> ObjectName { ObjectName(.pack, "packs/\(id.hex.prefix(2))/\(id.hex).pack") }
    public static func record(_ snapshot: SnapshotID) -> ObjectName { ObjectName(.record, "snapshots/\(snapshot.text).snapshot") }
    public static func catalog(_ snapshot: SnapshotID) -> ObjectName { ObjectName(.catalog, "snapshots/\(snapshot.text).catalog") }
    public static func listing(_ snapshot: SnapshotID) -> ObjectName { ObjectName(.listing, "snapshots/\(snapshot.text).listing") }
    /// The client secret, sealed to the operator's certificates (written once).
    public static let escrow = ObjectName(.escrow, "keys/client-secret.cms")
    /// The client secret sealed to another set of certificates, after the
    /// operator changed them (re-keying): `tag` is 16 hex digits naming the set.
    public static func escrow(tag: String) -> ObjectName { ObjectName(.escrow, "keys/client-secret-\(tag).cms") }

    // MARK: Parsing

    /// The name `path` is, or nil when it is not exactly a name fbk (or a
    /// device script) writes.
    public init?(parsing path: String) {
        if Self.isPack(path) {
            self.init(.pack, path)
        } else if path == Self.escrow.path {
            self.init(.escrow, path)
        } else if path.hasPrefix("keys/client-secret-"), path.hasSuffix(".cms"), path.utf8.count == 19 + 16 + 4,
                  path.utf8.dropFirst(19).prefix(16).allSatisfy(Self.isLowerHex) {
            self.init(.escrow, path)
        } else if path.hasPrefix("snapshots/"), let dot = path.lastIndex(of: "."),
                  Self.isSnapshotID(String(path[path.index(path.startIndex, offsetBy: 10)..<dot])) {
            switch path[path.index(after: dot)...] {
            case "snapshot": self.init(.record, path)
            case "catalog": self.init(.catalog, path)
            case "listing": self.init(.listing, path)
            default: return nil
            }
        } else if let blob = Self.parseBlob(path) {
            self.init(blob.isManifest ? .blobManifest : .blob, path)
        } else {
            return nil
        }
    }

    /// The snapshot a record, catalog or listing belongs to.
    public var snapshotID: SnapshotID? {
        guard [.record, .catalog, .listing].contains(kind), let dot = path.lastIndex(of: ".") else { return nil }
        return SnapshotID(String(path[path.index(path.startIndex, offsetBy: 10)..<dot]))
    }

    /// A pack's name: the SHA-256 of its sealed bytes.
    public var packID: PackID? { kind == .pack ? Digest(hex: String(path.dropFirst(9).prefix(64))).map(PackID.init) : nil }

    /// What a device blob's name says.
    public struct Blob: Hashable, Sendable {
        /// The blob kind the enrollment names (`config`, `flash`, …).
        public var kind: String
        /// `YYYYMMDDTHHMMSSZ`, with `-` and 16 hex digits after it when the device adds a random part.
        public var time: String
        /// The part number of a multi-part stream (1, 2, …).
        public var part: Int?
        public var isManifest: Bool
    }

    public var blob: Blob? { kind == .blob || kind == .blobManifest ? Self.parseBlob(path) : nil }

    /// `packs/ab/abcdef….pack`: 64 lower-case hex digits, under their first two.
    package static func isPack(_ path: String) -> Bool {
        let b = Array(path.utf8)
        guard b.count == 6 + 3 + 64 + 5, path.hasPrefix("packs/"), path.hasSuffix(".pack"), b[8] == UInt8(ascii: "/") else { return false }
        let hex = b[9..<73]
        return hex.allSatisfy(isLowerHex) && b[6] == hex.first! && b[7] == hex[hex.startIndex + 1]
    }

    /// A snapshot ID: `YYYYMMDDTHHMMSSZ-` and 16 lower-case hex digits.
    package static func isSnapshotID(_ id: String) -> Bool {
        let b = Array(id.utf8)
        guard b.count == 33, b[16] == UInt8(ascii: "-") else { return false }
        return isCompactTime(b[0..<16]) && b[17...].allSatisfy(isLowerHex)
    }

    /// `blobs/KIND-YYYYMMDDTHHMMSSZ[-16 hex][.partNNNN].(cms|manifest)`, KIND of `a-z 0-9 _ -`.
    private static func parseBlob(_ path: String) -> Blob? {
        guard path.hasPrefix("blobs/") else { return nil }
        var b = Array(path.utf8.dropFirst(6))
        let isManifest: Bool
        if b.count > 9, b.suffix(9) == Array(".manifest".utf8) { isManifest = true; b.removeLast(9) }
        else if b.count > 4, b.suffix(4) == Array(".cms".utf8) { isManifest = false; b.removeLast(4) }
        else { return nil }
        var part: Int?
        if b.count > 9, b[b.count - 9..<b.count - 4] == Array(".part".utf8)[...], b.suffix(4).allSatisfy(isDigit) {
            part = Int(String(decoding: b.suffix(4), as: UTF8.self))
            b.removeLast(9)
        }
        var timeEnd = b.count
        if b.count > 17, b[b.count - 17] == UInt8(ascii: "-"), b.suffix(16).allSatisfy(isLowerHex) { timeEnd -= 17 }
        guard timeEnd >= 18, b[timeEnd - 17] == UInt8(ascii: "-"), isCompactTime(b[timeEnd - 16..<timeEnd]) else { return nil }
        let kind = b[..<(timeEnd - 17)]
        guard !kind.isEmpty, kind.allSatisfy({ isLowerAlphanumeric($0) || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") }) else { return nil }
        return Blob(kind: String(decoding: kind, as: UTF8.self), time: String(decoding: b[(timeEnd - 16)...], as: UTF8.self),
                    part: part, isManifest: isManifest)
    }

    /// `YYYYMMDDTHHMMSSZ`.
    private static func isCompactTime(_ b: ArraySlice<UInt8>) -> Bool {
        let b = Array(b)
        guard b.count == 16, b[8] == UInt8(ascii: "T"), b[15] == UInt8(ascii: "Z") else { return false }
        return b[0..<8].allSatisfy(isDigit) && b[9..<15].allSatisfy(isDigit)
    }

    private static func isDigit(_ c: UInt8) -> Bool { c >= 48 && c <= 57 }
    private static func isLowerHex(_ c: UInt8) -> Bool { isDigit(c) || (c >= 97 && c <= 102) }
    private static func isLowerAlphanumeric(_ c: UInt8) -> Bool { isDigit(c) || (c >= 97 && c <= 122) }
}
