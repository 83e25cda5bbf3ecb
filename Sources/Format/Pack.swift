// Packs: many chunks sealed as one CMS object (FORMAT.md, "Packs").
//
//   pack = "FBKPACK1" || blob_1 || … || blob_n || table || trailer
//   table entry (50 bytes) = chunk ID (32) || kind (1) || form (1)
//                            || offset (LE64) || stored length (LE32) || plain length (LE32)
//   trailer (16 bytes) = n (LE32) || table offset (LE64) || "FBKT"

import Seal
import Chunker
import Platform

/// A chunk ID: HMAC-SHA256 of the chunk's plaintext under the client's key.
public typealias ChunkID = Digest

/// What a chunk holds.
public enum ChunkKind: UInt8, Sendable {
    /// Part of a file's content.
    case data = 0
    /// A serialized directory (see Tree.swift).
    case tree = 1
}

/// One chunk's entry in a pack's table.
public struct PackEntry: Equatable, Sendable {
    public var id: ChunkID
    public var kind: ChunkKind
    public var form: StorageForm
    /// Offset of the stored bytes from the start of the pack plaintext.
    public var offset: Int
    public var storedLength: Int
    public var plainLength: Int
}

public enum PackFormat {
    static let magic = Array("FBKPACK1".utf8)
    static let trailerMagic = Array("FBKT".utf8)
    static let entrySize = 50
    static let trailerSize = 16
    /// No chunk is larger than the chunker's largest maximum.
    static let maxChunkLength = 64 << 20
    /// No pack plaintext is larger than this (the writer stays far below).
    public static let maxPackLength = 1 << 30
    /// The largest sealed pack a reader opens: the plaintext limit, CMS
    /// piece headers (5 bytes per piece of at least 4 KiB) and a margin for
    /// the envelope's own headers. Anything larger is refused unread.
    public static let maxSealedLength = maxPackLength + maxPackLength / 512 + (1 << 20)

    /// Parses and checks a pack's table.
    /// - Throws: `FormatError` naming the first inconsistency.
    package static func parseTable(_ pack: [UInt8], name: String = "pack") throws(FormatError) -> [PackEntry] {
        guard pack.count >= magic.count + trailerSize else {
            throw FormatError(object: name, problem: "\(pack.count) bytes is shorter than an empty pack")
        }
        let tailLength = min(pack.count - magic.count, tailLength(trailer: Array(pack.suffix(trailerSize))))
        return try parseTable(head: Array(pack.prefix(magic.count)), dataLength: pack.count - magic.count - tailLength,
                              tail: Array(pack.suffix(tailLength)), name: name)
    }

    /// The length of the head a table reader reads first (the magic).
    package static var headLength: Int { magic.count }
    /// The length of the trailer, read before the table.
    package static var trailerLength: Int { trailerSize }

    /// How many bytes at a pack plaintext's end hold its table and trailer,
    /// as its last `trailerLength` bytes say (unchecked: `parseTable`
    /// checks it against everything else).
    package static func tailLength(trailer: [UInt8]) -> Int {
        guard trailer.count == trailerSize else { return trailerSize }
        let count = Int(trailer[0]) | Int(trailer[1]) << 8 | Int(trailer[2]) << 16 | Int(trailer[3]) << 24
        return count * entrySize + trailerSize
    }

    /// Parses a table given the pack's first 8 bytes, the length of what
    /// lies between them and the table, and the table with the trailer; so
    /// a reader needs only those bytes of a large pack.
    package static func parseTable(head: [UInt8], dataLength: Int, tail: [UInt8], name: String) throws(FormatError) -> [PackEntry] {
        let object = name
        guard head == magic else {
            throw FormatError(object: object, problem: "does not start with FBKPACK1")
        }
        guard tail.count >= trailerSize, dataLength >= 0 else {
            throw FormatError(object: object, problem: "is shorter than an empty pack")
        }
        // A virtual pack: offsets below are relative to its start, as in the format.
        let packCount = magic.count + dataLength + tail.count
        let base = magic.count + dataLength
        var trailer = ByteReader(tail, object: object, offset: tail.count - trailerSize)
        let count = try trailer.u32("entry count")
        let tableOffset = try trailer.offset("table offset")
        guard Array(try trailer.take(4, "trailer magic")) == trailerMagic else {
            throw FormatError(object: object, problem: "trailer does not end with FBKT")
        }
        guard tableOffset >= base, tableOffset <= packCount - trailerSize,
              (packCount - trailerSize - tableOffset) == count * entrySize else {
            throw FormatError(object: object, problem: "table of \(count) entries at offset \(tableOffset) does not fit a pack of \(packCount) bytes")
        }
        var r = ByteReader(tail, object: object, offset: tableOffset - base)
        var entries: [PackEntry] = []
        entries.reserveCapacity(count)
        var expectedOffset = magic.count
        for i in 0..<count {
            let id = try r.digest("chunk ID")
            guard let kind = ChunkKind(rawValue: try r.u8("kind")) else {
                throw FormatError(object: object, problem: "entry \(i) has an unknown kind")
            }
            guard let form = StorageForm(rawValue: try r.u8("form")) else {
                throw FormatError(object: object, problem: "entry \(i) has an unknown storage form")
            }
            let offset = try r.offset("offset")
            let stored = try r.u32("stored length")
            let plain = try r.u32("plain length")
            guard offset == expectedOffset, offset + stored <= tableOffset else {
                throw FormatError(object: object, problem: "entry \(i) at offset \(offset) (\(stored) bytes) does not follow the previous one inside the data area")
            }
            guard plain <= maxChunkLength, form == .zstd || stored == plain else {
                throw FormatError(object: object, problem: "entry \(i) has inconsistent lengths (stored \(stored), plain \(plain))")
            }
            expectedOffset = offset + stored
            entries.append(PackEntry(id: id, kind: kind, form: form, offset: offset, storedLength: stored, plainLength: plain))
        }
        guard expectedOffset == tableOffset else {
            throw FormatError(object: object, problem: "data area has \(tableOffset - expectedOffset) bytes no entry accounts for")
        }
        return entries
    }
}

/// Builds a pack's plaintext in memory (tests and tools; the archiver
/// streams packs with `PackWriter`).
struct PackBuilder {
    private(set) var bytes: [UInt8] = PackFormat.magic
    private(set) var entries: [PackEntry] = []

    var isEmpty: Bool { entries.isEmpty }
    var count: Int { bytes.count }

    mutating func append(id: ChunkID, kind: ChunkKind, form: StorageForm, stored: [UInt8], plainLength: Int) {
        entries.append(PackEntry(id: id, kind: kind, form: form, offset: bytes.count,
                                 storedLength: stored.count, plainLength: plainLength))
        bytes += stored
    }

    /// The finished pack plaintext.
    func finish() -> [UInt8] {
        bytes + PackFormat.tail(entries, tableOffset: bytes.count)
    }
}

/// Writes a pack straight into a sealing stream: the magic, each stored
/// chunk as it comes, then the table and trailer. Only the table is kept in
/// memory, so a pack's size costs no memory.
package final class PackWriter {
    private let stream: SealingStream
    private(set) var entries: [PackEntry] = []
    /// Plaintext bytes written so far.
    package var count: Int { stream.count }
    /// Chunks written so far.
    package var chunkCount: Int { entries.count }
    var isEmpty: Bool { entries.isEmpty }
    /// Where the sealed pack appears when finished.
    package var path: String { stream.path }

    package init(stream: SealingStream) throws {
        self.stream = stream
        try stream.write(PackFormat.magic)
    }

    package func append(id: ChunkID, kind: ChunkKind, form: StorageForm, stored: [UInt8], plainLength: Int) throws {
        entries.append(PackEntry(id: id, kind: kind, form: form, offset: stream.count,
                                 storedLength: stored.count, plainLength: plainLength))
        try stream.write(stored)
    }

    /// Writes the table and seals the pack.
    /// - Returns: the entries, checked by parsing the table that was
    ///   written (a bug here would otherwise be found only at restore
    ///   time), and the sealed size and SHA-256.
    package func finish() throws -> (entries: [PackEntry], size: Int, sha256: Digest) {
        let dataLength = stream.count - PackFormat.magic.count
        let tail = PackFormat.tail(entries, tableOffset: stream.count)
        let parsed = try PackFormat.parseTable(head: PackFormat.magic, dataLength: dataLength, tail: tail, name: "new pack")
        guard parsed == entries else { throw FormatError(object: "new pack", problem: "table does not read back as written") }
        try stream.write(tail)
        let (size, sha256) = try stream.finish()
        return (entries, size, sha256)
    }

    package func abandon() { stream.abandon() }
}

extension PackFormat {
    /// The table and trailer of a pack whose table starts at `tableOffset`.
    static func tail(_ entries: [PackEntry], tableOffset: Int) -> [UInt8] {
        var w = ByteWriter()
        for e in entries {
            w.raw(e.id.bytes)
            w.u8(e.kind.rawValue)
            w.u8(e.form.rawValue)
            w.u64(UInt64(e.offset))
            w.u32(e.storedLength)
            w.u32(e.plainLength)
        }
        w.u32(entries.count)
        w.u64(UInt64(tableOffset))
        w.raw(PackFormat.trailerMagic)
        return w.bytes
    }
}
