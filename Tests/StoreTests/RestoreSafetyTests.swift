import Foundation
import Seal
@testable import Platform
@testable import Format
@testable import Backend
@testable import Restorer
import Testing
import TestSupport

/// Repositories a compromised server or client could forge: the restorer
/// must never write outside its target and must say what it refused.
@Suite struct RestoreSafetyTests {
    /// Writes a one-snapshot repository whose trees are `trees` (the first is the root).
    static func forge(_ dir: TemporaryDirectory, trees: [[TreeEntry]], data: [[UInt8]] = [],
                      keys: ClientKeys, certificate: Certificate) throws -> String {
        let envelope = try Envelope(recipients: [certificate])
        var builder = PackBuilder()
        var treeIDs: [ChunkID] = []
        for d in data {
            let id = d.withUnsafeBytes { keys.chunkID($0) }
            builder.append(id: id, kind: .data, form: .stored, stored: d, plainLength: d.count)
        }
        for t in trees.reversed() {
            let bytes = TreeFormat.serialize(t)
            let id = bytes.withUnsafeBytes { keys.chunkID($0) }
            builder.append(id: id, kind: .tree, form: .stored, stored: bytes, plainLength: bytes.count)
            treeIDs.insert(id, at: 0)
        }
        let sealed = try envelope.seal(builder.finish())
        let name = SHA256.hash(sealed)
        let root = dir.file("storage/c1")
        try dir.write("storage/c1/" + ObjectName.pack(PackID(sha256: name)).path, sealed)
        try dir.write("storage/c1/" + ObjectName.escrow.path, try envelope.seal(Array((Hex.encode(keys.secret) + "\n").utf8)))
        let record = SnapshotRecord(
            id: "20260101T000000Z-0000000000000001", client: "c1", host: "h", started: "2026-01-01T00:00:00Z",
            finished: "2026-01-01T00:00:01Z", paths: ["/"], root: treeIDs[0].hex,
            chunker: ChunkerRecord(min: 1, avg: 2, max: 3, window: 1), stats: SnapshotStats(),
            signingKey: keys.signingKey().publicKey.hex,
            newPacks: [PackListing(path: ObjectName.pack(PackID(sha256: name)).path, chunks: builder.entries.map {
                .init(id: $0.id.hex, kind: Int($0.kind.rawValue), length: $0.plainLength) })])
        try dir.write("storage/c1/" + ObjectName.record(record.id).path,
                      try envelope.seal(SignedDocument.encode(record, key: keys.signingKey())))
        _ = root
        return dir.file("storage")
    }

    static func entry(_ name: String, _ type: EntryType) -> TreeEntry {
        TreeEntry(name: Array(name.utf8), type: type, mode: 0o644, uid: 0, gid: 0, user: [], group: [],
                  mtimeNanoseconds: 0, ctimeNanoseconds: 0, size: 0, xattrs: [])
    }

    func setup() throws -> (TemporaryDirectory, ClientKeys, Certificate, Opener) {
        let dir = try TemporaryDirectory()
        let pair = try generateKeyPair(type: .p384, subject: "t", passphrase: Array("p".utf8))
        let keyPath = try dir.write("k.pem", Array(pair.privateKeyPEM.utf8))
        let cert = try Certificate(bytes: Array(pair.certificatePEM.utf8))
        let opener = try Opener(key: PrivateKey(contentsOf: keyPath, passphrase: Array("p".utf8)), certificate: cert)
        return (dir, try ClientKeys(secret: secureRandomBytes(32)), cert, opener)
    }

    @Test func hardlinksLeavingTheTargetAreRefused() throws {
        let (dir, keys, cert, opener) = try setup()
        var link = Self.entry("evil", .hardlink)
        link.target = Array("../../../etc/passwd".utf8)
        var absolute = Self.entry("evil2", .hardlink)
        absolute.target = Array("/etc/passwd".utf8)
        let storage = try Self.forge(dir, trees: [[link, absolute]], keys: keys, certificate: cert)
        let repo = try Repository(sources: [DirectoryBackend(storageRoot: storage, client: "c1")], opener: opener, client: "c1", identity: .secret(keys))
        let target = dir.file("target")
        let summary = try Restorer(repository: repo, snapshot: try repo.snapshot("latest"), target: target).run(paths: [])
        #expect(summary.warnings.count == 2 && summary.warnings.allSatisfy { $0.contains("not a plain snapshot path") })
        #expect(try FileManager.default.contentsOfDirectory(atPath: target).isEmpty)
    }

    @Test func treesWithEscapingNamesAreRejected() throws {
        let (dir, keys, cert, opener) = try setup()
        // A tree whose entry is named "..": serialized by hand, as a forger would.
        var bytes = TreeFormat.serialize([Self.entry("xx", .fifo)])
        let at = bytes.firstIndex(of: UInt8(ascii: "x"))!
        bytes[at] = UInt8(ascii: "."); bytes[at + 1] = UInt8(ascii: ".")
        #expect(throws: FormatError.self) { try TreeFormat.parse(bytes) }
        let storage = try Self.forge(dir, trees: [[Self.entry("ok", .fifo)]], keys: keys, certificate: cert)
        // Swap the pack for one holding the forged tree under the same listing: the HMAC check refuses it.
        let repo = try Repository(sources: [DirectoryBackend(storageRoot: storage, client: "c1")], opener: opener, client: "c1", identity: .secret(keys))
        let snapshot = try repo.snapshot("latest")
        let pack = try FileManager.default.subpathsOfDirectory(atPath: storage + "/c1/packs").first { $0.hasSuffix(".pack") }!
        var forged = PackBuilder()
        forged.append(id: Digest(hex: snapshot.root)!, kind: .tree, form: .stored, stored: bytes, plainLength: bytes.count)
        try Data(try Envelope(recipients: [cert]).seal(forged.finish())).write(to: URL(fileURLWithPath: storage + "/c1/packs/" + pack))
        let fresh = try Repository(sources: [DirectoryBackend(storageRoot: storage, client: "c1")], opener: opener, client: "c1", identity: .secret(keys))
        #expect(throws: StoreError.self) {
            _ = try Restorer(repository: fresh, snapshot: snapshot, target: dir.file("t2")).run(paths: [])
        }
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: dir.file("t2"))) ?? []).isEmpty)
    }

    @Test func symlinksAreCreatedNeverFollowed() throws {
        let (dir, keys, cert, opener) = try setup()
        var link = Self.entry("escape", .symlink)
        link.target = Array("/".utf8)
        var sub = Self.entry("d", .directory)
        let inner = [Self.entry("f", .fifo)]
        sub.subtree = TreeFormat.serialize(inner).withUnsafeBytes { keys.chunkID($0) }
        sub.mode = 0o755
        let storage = try Self.forge(dir, trees: [[link, sub], inner], keys: keys, certificate: cert)
        let repo = try Repository(sources: [DirectoryBackend(storageRoot: storage, client: "c1")], opener: opener, client: "c1", identity: .secret(keys))
        let target = dir.file("target")
        _ = try Restorer(repository: repo, snapshot: try repo.snapshot("latest"), target: target).run(paths: [])
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: target + "/escape") == "/")
        var st = stat()
        #expect(lstat(target + "/d/f", &st) == 0 && st.st_mode & S_IFMT == S_IFIFO)
    }

    @Test func missingWrongKindAndHugeFilesAreNamedNotWritten() throws {
        let (dir, keys, cert, opener) = try setup()
        let data: [UInt8] = Array("real content".utf8)
        let dataID = data.withUnsafeBytes { keys.chunkID($0) }
        func file(_ name: String, size: UInt64, chunks: [ChunkID]) -> TreeEntry {
            var e = Self.entry(name, .file)
            e.size = size
            e.regions = chunks.isEmpty ? [] : [FileRegion(offset: 0, length: size, chunks: chunks)]
            return e
        }
        let innerTree = [Self.entry("x", .fifo)]
        let innerID = TreeFormat.serialize(innerTree).withUnsafeBytes { keys.chunkID($0) }
        let root = [file("good", size: UInt64(data.count), chunks: [dataID]),
                    file("missing", size: 5, chunks: [SHA256.hash([9])]),
                    file("wrongkind", size: UInt64(TreeFormat.serialize(innerTree).count), chunks: [innerID]),
                    file("huge", size: UInt64(Int64.max / 2), chunks: [])]
        let storage = try Self.forge(dir, trees: [root, innerTree], data: [data], keys: keys, certificate: cert)
        let repo = try Repository(sources: [DirectoryBackend(storageRoot: storage, client: "c1")], opener: opener, client: "c1", identity: .secret(keys))
        let target = dir.file("target")
        let summary = try Restorer(repository: repo, snapshot: try repo.snapshot("latest"), target: target).run(paths: [])
        #expect(Set(summary.damaged) == ["missing", "wrongkind", "huge"], "\(summary.damaged) \(summary.warnings)")
        #expect(FileManager.default.contents(atPath: target + "/good") == Data(data))
        for name in ["missing", "wrongkind", "huge"] { #expect(!FileManager.default.fileExists(atPath: target + "/" + name)) }
    }

    @Test func objectPathsFromRecordsCannotLeaveTheClientDirectory() throws {
        let dir = try TemporaryDirectory()
        try dir.write("storage/c1/x", [1])
        try dir.write("storage/secret", [2])
        let source = try DirectoryBackend(storageRoot: dir.file("storage"), client: "c1")
        #expect((try? source.fetch("x", limit: 10)) != nil)
        #expect((try? source.fetch("../secret", limit: 10)) == nil)
        #expect((try? source.fetch("/etc/passwd", limit: 1 << 20)) == nil)
    }
}
