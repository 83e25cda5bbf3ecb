import Foundation
import Seal
@testable import Platform
@testable import Format
@testable import Config
@testable import Index
@testable import Archiver
import Testing

@Suite struct PackFormatTests {
    func samplePack() -> (bytes: [UInt8], entries: [PackEntry]) {
        var b = PackBuilder()
        b.append(id: SHA256.hash([1]), kind: .data, form: .stored, stored: [1, 2, 3], plainLength: 3)
        b.append(id: SHA256.hash([2]), kind: .tree, form: .zstd, stored: [9, 9], plainLength: 100)
        return (b.finish(), b.entries)
    }

    @Test func tableRoundTrips() throws {
        let (bytes, entries) = samplePack()
        #expect(Array(bytes.prefix(8)) == Array("FBKPACK1".utf8))
        #expect(Array(bytes.suffix(4)) == Array("FBKT".utf8))
        #expect(try PackFormat.parseTable(bytes) == entries)
        #expect(entries[0].offset == 8 && entries[1].offset == 11)
        #expect(bytes.count == 8 + 5 + 2 * 50 + 16)
    }

    @Test func damagedTablesAreRejected() {
        let (bytes, _) = samplePack()
        var cases: [(String, [UInt8])] = [
            ("empty", []),
            ("truncated", Array(bytes.dropLast(3))),
            ("bad magic", [0] + Array(bytes.dropFirst())),
        ]
        var count = bytes; count[count.count - 16] = 7; cases.append(("entry count", count))
        var offset = bytes; offset[13 + 34] = 99; cases.append(("entry offset", offset))
        var kind = bytes; kind[13 + 32] = 5; cases.append(("kind", kind))
        var form = bytes; form[13 + 33] = 9; cases.append(("form", form))
        var stored = bytes; stored[13 + 46] = 200; cases.append(("plain length of stored chunk", stored))
        for (name, b) in cases {
            #expect(throws: FormatError.self, "\(name)") { try PackFormat.parseTable(b) }
        }
    }
}

/// Chunk IDs in a pack listing are read in place when written as fbk
/// writes them (JSONScanner.digest); every other spelling JSON allows must
/// still mean the same ID, and what is not 64 hex digits is refused.
@Suite struct PackListingSpellingTests {
    let keys = try! ClientKeys(secret: [UInt8](repeating: 9, count: 32))
    let snapshot: SnapshotID = "20261208T010000Z-00000000000000a1"

    /// A format-1 listing (JSON in the box) of one pack, its chunk IDs spelled as given.
    func listing(_ ids: [String]) throws -> [UInt8] {
        let path = ObjectName.listing(snapshot).path
        let chunks = ids.map { "[ \"\($0)\", 0, 5]" }.joined(separator: ",")
        let json = Array(#"{"format": 1, "client": "c", "snapshot": "\#(snapshot)", "root": "00", "packs": [{"path": "packs/ab/p.pack", "chunks": [\#(chunks)]}]}"#.utf8)
        let magic = Array("FBKLST01".utf8)
        return magic + (try SymmetricBox.seal(json, key: keys.listingKey, associatedData: magic + Array(path.utf8)))
    }

    func chunkIDs(_ sealed: [UInt8]) throws -> [ChunkID] {
        var ids: [ChunkID] = []
        _ = try PackListingDocument.open(sealed, path: ObjectName.listing(snapshot).path, keys: keys, accept: { _ in true }) { _, chunks in
            ids += chunks.map(\.id)
        }
        return ids
    }

    @Test func everySpellingOfAnIDIsTheSameID() throws {
        let plain = String(repeating: "0a", count: 31) + "ff"
        let upper = plain.uppercased()
        // JSON may spell any character as \u00XX: "\u0030" is "0", "\u0066" is "f".
        let escaped = #"\u0030"# + String(plain.dropFirst())
        let escapedLast = String(plain.dropLast()) + #"\u0066"#
        let ids = try chunkIDs(try listing([plain, upper, escaped, escapedLast]))
        let expected = try #require(Digest(hex: plain))
        #expect(ids == [expected, expected, expected, expected])
    }

    @Test func whatIsNotSixtyFourHexDigitsIsRefused() throws {
        let good = String(repeating: "ab", count: 32)
        for bad in [String(good.dropLast()) + "g", String(good.dropLast()), good + "a", good + "ab", String(good.dropLast(2)) + #"\u0067a"#, ""] {
            #expect(throws: FormatError.self, "\(bad)") { _ = try chunkIDs(try listing([good, bad])) }
        }
    }
}

@Suite struct TreeFormatTests {
    static func entry(_ name: [UInt8], _ type: EntryType) -> TreeEntry {
        var e = TreeEntry(name: name, type: type, mode: 0o644, uid: 1000, gid: 100, user: Array("u".utf8), group: [],
                          mtimeNanoseconds: 1_700_000_000_123_456_789, ctimeNanoseconds: -5, size: 0,
                          xattrs: [(Array("user.x".utf8), [0, 1, 2])])
        switch type {
        case .file:
            e.size = 10_000
            e.regions = [FileRegion(offset: 0, length: 10, chunks: [SHA256.hash([1])]),
                         FileRegion(offset: 5000, length: 20, chunks: [SHA256.hash([2]), SHA256.hash([3])])]
        case .directory: e.subtree = SHA256.hash([4])
        case .symlink: e.target = Array("../x".utf8)
        case .hardlink: e.target = Array("a/b".utf8)
        case .characterDevice, .blockDevice: e.rdev = 0x0103
        case .fifo, .socket: break
        }
        return e
    }

    @Test func everyTypeRoundTripsWithByteNames() throws {
        let names: [[UInt8]] = [[0xff, 0xfe, 0x41], Array(repeating: 0x61, count: 255), Array("with space\nnewline".utf8),
                                 Array("d".utf8), Array("l".utf8), Array("h".utf8), Array("p".utf8), Array("s".utf8),
                                 Array("c".utf8), Array("b".utf8)]
        let types: [EntryType] = [.file, .file, .file, .directory, .symlink, .hardlink, .fifo, .socket, .characterDevice, .blockDevice]
        let entries = zip(names, types).map { Self.entry($0, $1) }
        let bytes = TreeFormat.serialize(entries)
        let parsed = try TreeFormat.parse(bytes)
        #expect(parsed == entries.sorted { $0.name.lexicographicallyPrecedes($1.name) })
        // Serialization is deterministic whatever the input order.
        #expect(TreeFormat.serialize(entries.reversed()) == bytes)
        // The archiver's part writer makes the same tree for a directory that fits one part.
        var writer = TreePartWriter()
        for e in entries.sorted(by: { $0.name.lexicographicallyPrecedes($1.name) }) {
            let full = writer.append(e)
            #expect(!full)
        }
        var stored: [[UInt8]] = []
        _ = try writer.finish { stored.append($0); return SHA256.hash($0) }
        #expect(stored == [bytes])
    }

    @Test func dangerousNamesAndDamageAreRejected() {
        for bad: [UInt8] in [Array("..".utf8), Array(".".utf8), Array("a/b".utf8), [0x61, 0], []] {
            let bytes = TreeFormat.serialize([Self.entry(bad, .fifo)])
            #expect(throws: FormatError.self) { try TreeFormat.parse(bytes) }
        }
        let good = TreeFormat.serialize([Self.entry(Array("a".utf8), .file), Self.entry(Array("b".utf8), .fifo)])
        #expect(throws: FormatError.self) { try TreeFormat.parse(Array(good.dropLast())) }
        #expect(throws: FormatError.self) { try TreeFormat.parse(good + [0]) }
        var huge = good
        huge[8] = 0xff; huge[9] = 0xff; huge[10] = 0xff  // entry count far beyond the bytes
        #expect(throws: FormatError.self) { try TreeFormat.parse(huge) }
        // Regions past the file size.
        var e = Self.entry(Array("f".utf8), .file)
        e.size = 100
        #expect(throws: FormatError.self) { try TreeFormat.parse(TreeFormat.serialize([e])) }
    }
}

@Suite struct PackListingTests {
    let keys = try! ClientKeys(secret: [UInt8](repeating: 3, count: 32))

    /// Three packs whose paths need quoting, with every kind and edge lengths.
    func sample() -> (PackListingDocument, [[PackEntry]]) {
        var listings: [PackListing] = []
        var entries: [[PackEntry]] = []
        for p in 0..<3 {
            let pack = (0..<(p * 5)).map { i in
                PackEntry(id: SHA256.hash([UInt8(p), UInt8(i)]), kind: i % 3 == 0 ? .tree : .data, form: .zstd,
                          offset: 8, storedLength: 1, plainLength: [0, 1, 255, 65_536, 8 << 20, Int(UInt32.max)][i % 6])
            }
            let path = "packs/\(p)\"/\\ \u{1}é.pack"   // quoting, a control character, UTF-8
            entries.append(pack)
            listings.append(PackListing(path: path, chunks: pack.map {
                .init(id: $0.id.hex, kind: Int($0.kind.rawValue), length: $0.plainLength)
            }))
        }
        return (PackListingDocument(client: "c\"1", snapshot: "20261127T030000Z-000000000000005e", root: String(repeating: "0", count: 64), packs: listings), entries)
    }

    @Test func theWriterWritesWhatJSONEncoderWritesCompressedAndSealed() throws {
        let (document, entries) = sample()
        var sealed: [UInt8] = []
        let writer = try PackListingWriter(client: document.client, snapshot: document.snapshot, keys: keys) { sealed += $0 }
        for (listing, pack) in zip(document.packs, entries) { try writer.append(path: listing.path, entries: pack) }
        let (size, sha256) = try writer.finish(root: document.root)
        #expect(size == sealed.count && sha256 == SHA256.hash(sealed))
        #expect(sealed.starts(with: Array("FBKLST02".utf8)))
        let json = try PackListingDocument.plaintext(sealed, path: ObjectName.listing("20261127T030000Z-000000000000005e").path, keys: keys)
        let same = json == SignedDocument.json(document)
        #expect(same, "\(String(decoding: json.prefix(300), as: UTF8.self))")
        #expect(try PackListingDocument.open(sealed, path: ObjectName.listing("20261127T030000Z-000000000000005e").path, keys: keys) == document)
        // The in-memory form is the same object.
        #expect(try PackListingDocument.open(document.sealed(keys: keys), path: ObjectName.listing("20261127T030000Z-000000000000005e").path, keys: keys) == document)
        // The body is compressed: hex IDs take about half their length.
        #expect(sealed.count < json.count * 3 / 4)
    }

    @Test func listingsStreamTheirPacksOnlyOnceWholeAndAccepted() throws {
        let (document, _) = sample()
        let sealed = try document.sealed(keys: keys)
        var paths: [String] = []
        var lengths: [[Int]] = []
        let header = try PackListingDocument.open(sealed, path: ObjectName.listing("20261127T030000Z-000000000000005e").path, keys: keys, accept: { $0.client == "c\"1" }) {
            paths.append($0)
            lengths.append($1.map(\.length))
        }
        #expect(header?.root == document.root && header?.packs == [])
        #expect(paths == document.packs.map(\.path) && lengths == document.packs.map { $0.chunks.map(\.length) })
        var handed = 0
        #expect(try PackListingDocument.open(sealed, path: ObjectName.listing("20261127T030000Z-000000000000005e").path, keys: keys, accept: { _ in false }) { _, _ in handed += 1 } == nil)
        #expect(handed == 0)
    }

    @Test func aListingIsBoundToItsKeyPathAndBytes() throws {
        let (document, _) = sample()
        let sealed = try document.sealed(keys: keys)
        let otherKeys = try ClientKeys(secret: [UInt8](repeating: 4, count: 32))
        #expect(throws: SealError.self) { try PackListingDocument.open(sealed, path: ObjectName.listing("20261127T030000Z-000000000000005e").path, keys: otherKeys) }
        #expect(throws: SealError.self) { try PackListingDocument.open(sealed, path: ObjectName.listing("20261127T030000Z-00000000000000ff").path, keys: keys) }
        for at in [9, sealed.count / 2, sealed.count - 1] {
            var damaged = sealed
            damaged[at] ^= 1
            #expect(throws: (any Error).self) { try PackListingDocument.open(damaged, path: ObjectName.listing("20261127T030000Z-000000000000005e").path, keys: keys) }
        }
        var foreign = sealed
        foreign[7] = UInt8(ascii: "9")
        #expect(throws: FormatError.self) { try PackListingDocument.open(foreign, path: ObjectName.listing("20261127T030000Z-000000000000005e").path, keys: keys) }
    }

    @Test func formatOneListingsStillOpen() throws {
        let (document, _) = sample()
        var old = document
        old.format = 1
        let magic = Array("FBKLST01".utf8)
        let sealed = magic + (try SymmetricBox.seal(SignedDocument.json(old), key: keys.listingKey,
                                                    associatedData: magic + Array(ObjectName.listing("20261127T030000Z-000000000000005e").path.utf8)))
        #expect(try PackListingDocument.open(sealed, path: ObjectName.listing("20261127T030000Z-000000000000005e").path, keys: keys) == old)
    }
}

@Suite struct SignedDocumentTests {
    func record(packs: [PackListing]) -> SnapshotRecord {
        SnapshotRecord(id: "20260101T000000Z-0000000000000000", client: "c", host: "h", started: "a", finished: "b", paths: ["/etc"],
                       root: String(repeating: "0", count: 64), chunker: ChunkerRecord(min: 1, avg: 2, max: 3, window: 4),
                       stats: SnapshotStats(), signingKey: "k", newPacks: packs)
    }

    func listing(_ n: Int) -> [PackListing] {
        (0..<n).map { p in
            PackListing(path: "packs/\(p)/p\\\"\(p).pack", chunks: (0..<(p + 1)).map { c in
                .init(id: Hex.encode([UInt8](repeating: UInt8(truncatingIfNeeded: p * 16 + c), count: 32)), kind: c % 2, length: c * 1000 + p)
            })
        }
    }

    func streamed(_ document: [UInt8], accept: Bool = true) throws -> (SnapshotRecord?, [PackListing]) {
        var packs: [PackListing] = []
        let r = try SignedDocument.decodeRecord(from: document, name: "r", verifyingKey: nil, accept: { _ in accept }) { path, chunks in
            packs.append(PackListing(path: path, chunks: chunks.map { .init(id: $0.id.hex, kind: -1, length: $0.length) }))
        }
        return (r, packs)
    }

    @Test func recordsStreamTheirListingLikeTheDecoderReadsIt() throws {
        let key = try ClientKeys(secret: [UInt8](repeating: 5, count: 32)).signingKey()
        let packs = listing(20)
        let document = SignedDocument.encode(record(packs: packs), key: key)
        let (r, streamedPacks) = try streamed(document)
        let decoded = try SignedDocument.decode(SnapshotRecord.self, from: document, name: "r", verifyingKey: nil).0
        #expect(r == record(packs: []))
        #expect(streamedPacks.map(\.path) == decoded.newPacks!.map(\.path))
        #expect(streamedPacks.map { $0.chunks.map(\.id) } == decoded.newPacks!.map { $0.chunks.map(\.id) })
        #expect(streamedPacks.map { $0.chunks.map(\.length) } == decoded.newPacks!.map { $0.chunks.map(\.length) })
        // The signature is checked on the way.
        #expect(try SignedDocument.decodeRecord(from: document, name: "r", verifyingKey: key.publicKey, accept: { _ in true },
                                                eachPack: { _, _ in }) != nil)
        var forged = document
        forged[forged.firstIndex(of: UInt8(ascii: "h"))!] = UInt8(ascii: "H")
        #expect(throws: FormatError.self) {
            try SignedDocument.decodeRecord(from: forged, name: "r", verifyingKey: key.publicKey, accept: { _ in true }, eachPack: { _, _ in })
        }
        // A record refused by its reader hands over nothing.
        let (refused, none) = try streamed(document, accept: false)
        #expect(refused == nil && none.isEmpty)
    }

    @Test func recordListingsWithSpacesOtherKeyOrdersAndDamage() throws {
        let key = try ClientKeys(secret: [UInt8](repeating: 5, count: 32)).signingKey()
        let id = String(repeating: "ab", count: 32)
        let base = String(decoding: SignedDocument.json(record(packs: [])), as: UTF8.self)
        func document(_ newPacks: String) -> [UInt8] {
            SignedDocument.sign(Array(base.replacingOccurrences(of: "\"new_packs\":[]", with: "\"new_packs\" : " + newPacks).utf8), key: key)
        }
        let spaced = document(" [ { \"path\" : \"packs/a.pack\" , \"chunks\" : [ [ \"\(id)\" , 0 , 12 ] ] } ] ")
        let (r, packs) = try streamed(spaced)
        #expect(r != nil && packs.count == 1 && packs[0].path == "packs/a.pack" && packs[0].chunks.map(\.length) == [12])
        // Damage anywhere, even after the listing, means nothing is handed over.
        for bad in ["[{\"path\":\"p\",\"chunks\":[[\"zz\",0,1]]}]", "[{\"path\":\"p\"}]",
                    "[{\"path\":\"p\",\"chunks\":[[\"\(id)\",0,-1]]}]", "[{\"path\":\"p\",\"chunks\":[[\"\(id)\",0,1]],\"x\":1}]",
                    "[{\"path\":\"p\",\"chunks\":[[\"\(id)\",0,1]]}", "[{\"path\":\"p\",\"chunks\":[[\"\(id)\",0,1]]}] trailing"] {
            var handed = 0
            #expect(throws: FormatError.self) {
                try SignedDocument.decodeRecord(from: document(bad), name: "r", verifyingKey: nil, accept: { _ in true },
                                                eachPack: { _, _ in handed += 1 })
            }
            #expect(handed == 0)
        }
    }

    @Test func signatureVerifiesAndDetectsChanges() throws {
        let keys = try ClientKeys(secret: [UInt8](repeating: 7, count: 32))
        let signing = keys.signingKey()
        let record = Catalog(client: "c", snapshot: "20261127T030000Z-000000000000005e", created: "t",
                             record: .init(path: "snapshots/s.snapshot", size: 1, sha256: "00"), packs: [],
                             addedBytes: 0, signingKey: signing.publicKey.hex)
        let doc = SignedDocument.encode(record, key: signing)
        let (decoded, valid) = try SignedDocument.decode(Catalog.self, from: doc, name: "c", verifyingKey: signing.publicKey)
        #expect(decoded == record && valid == true)
        var forged = doc
        forged[5] ^= 1
        #expect(throws: FormatError.self) {
            try SignedDocument.decode(Catalog.self, from: forged, name: "c", verifyingKey: signing.publicKey)
        }
        let other = try ClientKeys(secret: [UInt8](repeating: 8, count: 32)).signingKey().publicKey
        #expect(throws: FormatError.self) { try SignedDocument.decode(Catalog.self, from: doc, name: "c", verifyingKey: other) }
        #expect(throws: FormatError.self) {
            try SignedDocument.decode(Catalog.self, from: Array("{}\n".utf8), name: "c", verifyingKey: nil)
        }
    }

    @Test func derivedKeysAreDistinctAndStable() throws {
        let keys = try ClientKeys(secret: [UInt8](repeating: 7, count: 32))
        #expect(Set([keys.chunkIDKey, keys.chunkerSeed, keys.signingSeed]).count == 3)
        #expect(keys.chunkIDKey == HMACSHA256.mac(key: keys.secret, Array("fbk chunk id v1".utf8)).bytes)
        #expect(throws: StoreError.self) { try ClientKeys(secret: [1, 2]) }
    }
}

@Suite struct TextFormsTests {
    @Test func timesAreWhatFoundationsFormattersWrite() {
        let iso = ISO8601DateFormatter()
        iso.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let compact = DateFormatter()
        compact.locale = Locale(identifier: "en_US_POSIX")
        compact.timeZone = TimeZone(identifier: "UTC")
        compact.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        // Exact binary fractions, so rounding cannot differ.
        for seconds in [0.0, 951_782_400.5, 1_795_000_000.125, 4_102_444_799.875, 1_000_000_000.0] {
            let date = Date(timeIntervalSince1970: seconds)
            #expect(Timestamp.rfc3339(date) == iso.string(from: date))
            #expect(Timestamp.compactTime(date) == compact.string(from: date))
        }
        #expect(Timestamp.newSnapshotID(at: Date(timeIntervalSince1970: 1_795_000_000)).text.hasPrefix("20261118T"))
    }

    @Test func sizesAreInBinaryUnits() {
        #expect(SnapshotSummary.binarySize(0) == "0 B")
        #expect(SnapshotSummary.binarySize(1023) == "1023 B")
        #expect(SnapshotSummary.binarySize(1024) == "1.0 KiB")
        #expect(SnapshotSummary.binarySize(479_780_691) == "457.6 MiB")
        #expect(SnapshotSummary.binarySize(3 << 40) == "3.0 TiB")
    }

    @Test func clientNames() {
        for good in ["a", "web-1", "pi.lab_2", "9x", "Z"] { #expect(ClientConfig.isValidClientName(good), "\(good)") }
        for bad in ["", "-a", ".a", "_a", "a/b", "a b", "é", "a@b", "a\u{0}", "[a]"] { #expect(!ClientConfig.isValidClientName(bad), "\(bad)") }
    }
}

@Suite struct FilesCacheCodecTests {
    @Test func rowsKeepTheirPacksAndXattrsAndOlderRowsStillRead() throws {
        let regions = [FileRegion(offset: 0, length: 10, chunks: [SHA256.hash([1]), SHA256.hash([2])]),
                       FileRegion(offset: 4096, length: 3, chunks: [SHA256.hash([3])])]
        let encoded = EncodedRegions(regions)
        let xattrs: [(name: [UInt8], value: [UInt8])] = [(Array("user.a".utf8), [0, 1, 2]), (Array("user.b".utf8), [])]
        let row = FilesCacheCodec.encode(encoded, packs: [3, 70_000, 1 << 40], xattrs: xattrs)
        let decoded = try FilesCacheCodec.decode(row, fileSize: 4099)
        #expect(try decoded.regions.decode() == regions && decoded.packs == [3, 70_000, 1 << 40])
        #expect(decoded.xattrs?.map(\.name) == xattrs.map(\.name) && decoded.xattrs?.map(\.value) == xattrs.map(\.value))
        // The regions go into a tree as they are: the same bytes a tree writer makes.
        var w = ByteWriter()
        TreeFormat.write(regions, to: &w)
        #expect(Array(decoded.regions.bytes) == w.bytes)
        // A file with no extended attributes keeps that it has none.
        #expect(try FilesCacheCodec.decode(FilesCacheCodec.encode(encoded, packs: [1], xattrs: []), fileSize: 4099).xattrs?.isEmpty == true)
        // Rows written before extended attributes, or packs, were kept.
        let withoutXattrs = FilesCacheCodec.encode(encoded, packs: [3])
        #expect(try FilesCacheCodec.decode(withoutXattrs, fileSize: 4099).xattrs == nil)
        let old = FilesCacheCodec.encode(encoded, packs: nil)
        let oldDecoded = try FilesCacheCodec.decode(old, fileSize: 4099)
        #expect(try oldDecoded.regions.decode() == regions && oldDecoded.packs == nil && oldDecoded.xattrs == nil)
        #expect(try FilesCacheCodec.decode(FilesCacheCodec.encode(EncodedRegions([]), packs: []), fileSize: 0).packs == [])
        // Damage is refused, not half read.
        #expect(throws: FormatError.self) { try FilesCacheCodec.decode(Array(row.dropLast()), fileSize: 4099) }
        #expect(throws: FormatError.self) { try FilesCacheCodec.decode(row + [0], fileSize: 4099) }
        #expect(throws: FormatError.self) { try FilesCacheCodec.decode(old + [2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0], fileSize: 4099) }
        // Regions past the file's size (the row's size column) are refused.
        #expect(throws: FormatError.self) { try FilesCacheCodec.decode(row, fileSize: 4098) }
    }
}
