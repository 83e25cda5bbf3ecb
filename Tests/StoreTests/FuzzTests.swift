import Foundation
import Seal
@testable import Format
@testable import Config
import Testing

/// A mutation fuzzer over every parser of data a compromised server could
/// forge: pack tables, trees, snapshot records, catalogs, pack listings,
/// device-blob names. Seeds are real objects; mutations flip bits, insert,
/// delete, truncate, splice and overwrite with interesting values. A parser
/// may reject anything, but must never crash, and what it accepts must
/// re-serialize to something it accepts again. Seeded and bounded:
/// `make test` runs a smoke of each target, `make fuzz` runs them long
/// (FBK_FUZZ_ITERATIONS). Crashers found are kept as regression inputs in
/// `regressions` below.
@Suite struct FuzzTests {
    static let iterations = Int(ProcessInfo.processInfo.environment["FBK_FUZZ_ITERATIONS"] ?? "") ?? 20_000

    struct Mutator {
        var s: UInt64
        mutating func next() -> UInt64 { s ^= s >> 12; s ^= s << 25; s ^= s >> 27; return s &* 0x2545_F491_4F6C_DD1D }
        mutating func below(_ n: Int) -> Int { n <= 0 ? 0 : Int(next() % UInt64(n)) }

        mutating func mutate(_ input: [UInt8], corpus: [[UInt8]]) -> [UInt8] {
            var b = input
            for _ in 0...below(4) {
                switch below(8) {
                case 0 where !b.isEmpty: b[below(b.count)] ^= UInt8(1) << UInt8(below(8))
                case 1: b.insert(UInt8(truncatingIfNeeded: next()), at: below(b.count + 1))
                case 2 where !b.isEmpty: b.remove(at: below(b.count))
                case 3: b = Array(b.prefix(below(b.count + 1)))
                case 4 where !b.isEmpty:
                    let at = below(b.count)
                    let values: [UInt8] = [0, 0xff, 0x7f, 0x80, 1]
                    for i in at..<min(b.count, at + 1 + below(8)) { b[i] = values[below(values.count)] }
                case 5:
                    let other = corpus[below(corpus.count)]
                    b = Array(b.prefix(below(b.count + 1))) + Array(other.suffix(below(other.count + 1)))
                case 6 where b.count >= 4:
                    // A large little-endian count or length somewhere.
                    let at = below(b.count - 3)
                    for (i, v) in [UInt8(0xff), 0xff, 0xff, 0x7f].enumerated() { b[at + i] = v }
                default: b.append(contentsOf: (0..<below(16)).map { _ in UInt8(truncatingIfNeeded: next()) })
                }
            }
            return b
        }
    }

    func fuzz(_ name: String, seed: UInt64, corpus: [[UInt8]], iterations: Int = iterations, _ target: ([UInt8]) -> Void) {
        var m = Mutator(s: seed | 1)
        for c in corpus { target(c) }
        for _ in 0..<iterations { target(m.mutate(corpus[m.below(corpus.count)], corpus: corpus)) }
    }

    static func sampleTree() -> [UInt8] {
        var file = TreeEntry(name: Array("file".utf8), type: .file, mode: 0o644, uid: 1, gid: 2, user: Array("u".utf8), group: [],
                             mtimeNanoseconds: 5, ctimeNanoseconds: 6, size: 100, xattrs: [(Array("user.a".utf8), [1, 2])])
        file.regions = [FileRegion(offset: 0, length: 50, chunks: [SHA256.hash([1])]), FileRegion(offset: 60, length: 40, chunks: [SHA256.hash([2])])]
        var dir = TreeEntry(name: Array("dir".utf8), type: .directory, mode: 0o755, uid: 0, gid: 0, user: [], group: [],
                            mtimeNanoseconds: 0, ctimeNanoseconds: 0, size: 0, xattrs: [])
        dir.subtree = SHA256.hash([3])
        var link = TreeEntry(name: Array("link".utf8), type: .symlink, mode: 0o777, uid: 0, gid: 0, user: [], group: [],
                             mtimeNanoseconds: 0, ctimeNanoseconds: 0, size: 4, xattrs: [])
        link.target = Array("file".utf8)
        return TreeFormat.serialize([file, dir, link])
    }

    @Test func treeParser() {
        fuzz("tree", seed: 1, corpus: [Self.sampleTree(), TreeFormat.serialize([])]) { input in
            guard let entries = try? TreeFormat.parse(input) else { return }
            #expect((try? TreeFormat.parse(TreeFormat.serialize(entries))) == entries)
        }
    }

    @Test func treeOfPartsParser() {
        let parts = TreeFormat.serializeParts([SHA256.hash([1]), SHA256.hash([2]), SHA256.hash([3])])
        fuzz("tree of parts", seed: 7, corpus: [parts, TreeFormat.serializeParts([SHA256.hash([9])])]) { input in
            // Rejected, or not a tree of parts (nil), or accepted: then it re-serializes to itself.
            guard let ids = try? TreeFormat.parseParts(input) else { return }
            #expect(TreeFormat.serializeParts(ids) == input)
        }
    }

    @Test func packTableParser() {
        var b = PackBuilder()
        b.append(id: SHA256.hash([1]), kind: .data, form: .stored, stored: [1, 2, 3], plainLength: 3)
        b.append(id: SHA256.hash([2]), kind: .tree, form: .zstd, stored: [4, 5], plainLength: 99)
        fuzz("pack", seed: 2, corpus: [b.finish(), PackBuilder().finish()]) { input in
            guard let entries = try? PackFormat.parseTable(input) else { return }
            for e in entries { #expect(e.offset + e.storedLength <= input.count) }
        }
    }

    @Test func signedDocuments() throws {
        let keys = try ClientKeys(secret: [UInt8](repeating: 9, count: 32))
        let catalog = Catalog(client: "c", snapshot: "20261127T030000Z-000000000000005e", created: "t", record: .init(path: "p", size: 1, sha256: "00"),
                              packs: [.init(path: "packs/aa/x.pack", size: 5, sha256: "aa")], addedBytes: 3,
                              signingKey: keys.signingKey().publicKey.hex)
        let record = SnapshotRecord(id: "20260101T000000Z-0000000000000001", client: "c", host: "h", started: "a", finished: "b", paths: ["/"], root: "00",
                                    chunker: ChunkerRecord(min: 1, avg: 2, max: 3, window: 4), stats: SnapshotStats(),
                                    signingKey: "k", newPacks: [PackListing(path: "p", chunks: [.init(id: "00", kind: 0, length: 1)])])
        var listed = record
        listed.newPacks = [PackListing(path: "packs/ab/x.pack", chunks: [.init(id: String(repeating: "ab", count: 32), kind: 0, length: 7),
                                                                      .init(id: String(repeating: "cd", count: 32), kind: 1, length: 9)])]
        var named = record
        named.newPacks = nil
        named.listing = .init(path: ObjectName.listing("20260101T000000Z-0000000000000001").path, size: 100, sha256: String(repeating: "ef", count: 32))
        let corpus = [SignedDocument.encode(catalog, key: keys.signingKey()), SignedDocument.encode(record, key: keys.signingKey()),
                      SignedDocument.encode(listed, key: keys.signingKey()), SignedDocument.encode(named, key: keys.signingKey())]
        let key = keys.signingKey().publicKey
        fuzz("signed", seed: 3, corpus: corpus) { input in
            _ = try? SignedDocument.decode(Catalog.self, from: input, name: "c", verifyingKey: key)
            _ = try? SignedDocument.decode(SnapshotRecord.self, from: input, name: "r", verifyingKey: nil)
            _ = try? SignedDocument.decode(Catalog.self, from: input, name: "c", verifyingKey: nil)
            _ = try? SignedDocument.decodeRecord(from: input, name: "r", verifyingKey: nil, accept: { _ in true }, eachPack: { _, _ in })
        }
        // A forged document must never verify.
        var m = Mutator(s: 33)
        for _ in 0..<200 {
            let forged = m.mutate(corpus[0], corpus: corpus)
            guard forged != corpus[0] else { continue }
            #expect((try? SignedDocument.decode(Catalog.self, from: forged, name: "c", verifyingKey: key)) == nil
                || forged.split(separator: 10).first.map(Array.init) == corpus[0].split(separator: 10).first.map(Array.init))
        }
    }

    @Test func packListings() throws {
        let keys = try ClientKeys(secret: [UInt8](repeating: 4, count: 32))
        let doc = PackListingDocument(client: "c", snapshot: "20261127T030000Z-000000000000005e", root: "00", packs: [PackListing(path: "p", chunks: [.init(id: String(repeating: "ab", count: 32), kind: 1, length: 2)])])
        let sealed = try doc.sealed(keys: keys)
        fuzz("listing", seed: 4, corpus: [sealed], iterations: Self.iterations / 3) { input in
            let opened = try? PackListingDocument.open(input, path: ObjectName.listing("20261127T030000Z-000000000000005e").path, keys: keys)
            #expect(opened == nil || input == sealed, "a changed listing was accepted")
            var handed = 0
            let streamed = try? PackListingDocument.open(input, path: ObjectName.listing("20261127T030000Z-000000000000005e").path, keys: keys, accept: { _ in true }) { _, _ in handed += 1 }
            #expect(streamed == nil && handed == 0 || input == sealed, "a changed listing handed packs over")
        }
    }

    @Test func deviceBlobNamesAndConfigurations() {
        let names = ["blobs/sysupgrade-20261127T030000Z.cms", "blobs/zfs-full-20261127T030000Z.part0001.cms",
                     "blobs/conf-20261127T030000Z.manifest"].map { Array($0.utf8) }
        fuzz("blob names", seed: 5, corpus: names) { input in
            let name = ObjectName(parsing: String(decoding: input, as: UTF8.self))
            _ = (name?.blob, name?.packID, name?.snapshotID)
        }
        let configs = [Array("clients:\n  - name: a\n    kind: device\n    blobs:\n      - kind: x\n        min_size: 1KB\n".utf8),
                       Array(ConfigTests.valid.utf8)]
        fuzz("configs", seed: 6, corpus: configs, iterations: Self.iterations / 3) { input in
            let text = String(decoding: input, as: UTF8.self)
            _ = try? CheckConfig.parse(text, file: "f")
            _ = try? ClientConfig.parse(text, file: "f")
        }
    }

    /// Inputs that once crashed a parser (none found so far); kept so they never do again.
    static let regressions: [(String, [UInt8])] = [
        ("tree with an entry count far beyond its bytes", Array("FBKTREE1".utf8) + [0xff, 0xff, 0xff, 0x7f]),
        ("pack whose table offset points past its end", Array("FBKPACK1".utf8) + [1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0] + Array("FBKT".utf8)),
        ("blob name with an empty optional part group", Array("blobs/x-20261127T030000Z.cms".utf8)),
    ]

    @Test func regressionInputsStayHarmless() {
        for (_, input) in Self.regressions {
            _ = try? TreeFormat.parse(input)
            _ = try? PackFormat.parseTable(input)
            _ = ObjectName(parsing: String(decoding: input, as: UTF8.self))?.blob
        }
    }
}
