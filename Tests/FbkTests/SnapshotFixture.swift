import Foundation
import Seal
import Format
import Index
import Testing
import TestSupport

/// A client set up with `fbk keygen` and `fbk init` against two real nginx
/// mirrors, and a test-side reader that opens what landed on a mirror.
final class SnapshotFixture: @unchecked Sendable {
    let dir: TemporaryDirectory
    let mirrors: [NginxMirror]
    let passphrase = "fixture passphrase"
    var configPath: String { dir.file("etc/fbk.conf") }
    var source: String { dir.file("src") }
    var keysDirectory: String { dir.file("keys") }

    init(client: String = "c1") throws {
        dir = try TemporaryDirectory()
        mirrors = [try NginxMirror(users: [client: "pw-\(client)"]), try NginxMirror(users: [client: "pw-\(client)"])]
        try FileManager.default.createDirectory(atPath: source, withIntermediateDirectories: true)
        let keygen = try CLI.run(["keygen", "--out", keysDirectory, "--type", "p384"], environment: ["FBK_PASSPHRASE": passphrase])
        guard keygen.status == 0 else { throw FixtureError("keygen: \(keygen.stderr)") }
        let pw = try dir.write("password", Array("pw-\(client)\n".utf8))
        chmod(pw, 0o600)
        let r = try CLI.run(["init", "--config", configPath, "--client", client, "--recipient", keysDirectory + "/recipient.pem",
                             "--mirror", mirrors[0].url(client), "--mirror", mirrors[1].url(client),
                             "--password-file", pw, "--state", dir.file("state"), "--pack-size", String(1 << 20), source])
        guard r.status == 0 else { throw FixtureError("init: \(r.stderr)") }
        // Fast retries, so a stopped mirror costs the tests little time.
        var text = try String(contentsOfFile: configPath, encoding: .utf8)
        text = text.replacingOccurrences(of: "retry_delays: [1.0, 2.0, 4.0]", with: "retry_delays: [0.1]")
        text = text.replacingOccurrences(of: "connect_timeout: 10", with: "connect_timeout: 2")
        try text.write(toFile: configPath, atomically: true, encoding: .utf8)
    }

    /// Adds lines to the client's configuration (fields the fixture's `fbk init` does not write).
    func configure(_ lines: String) throws {
        let text = try String(contentsOfFile: configPath, encoding: .utf8)
        try (text + "\n" + lines + "\n").write(toFile: configPath, atomically: true, encoding: .utf8)
    }

    /// Runs `fbk snapshot --json` and parses the summary.
    func snapshot() throws -> (status: Int32, summary: [String: Any], stderr: String) {
        let r = try CLI.run(["snapshot", "--config", configPath, "--json"])
        let json = (try? JSONSerialization.jsonObject(with: r.stdoutBytes)) as? [String: Any] ?? [:]
        return (r.status, json, r.stderr)
    }

    /// Every file under the client's directory on mirror `i`, relative paths.
    func objects(_ i: Int, client: String = "c1") -> Set<String> {
        let root = mirrors[i].storageRoot + "/" + client
        guard let e = FileManager.default.enumerator(atPath: root) else { return [] }
        var out = Set<String>()
        while let p = e.nextObject() as? String {
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: root + "/" + p, isDirectory: &isDir), !isDir.boolValue { out.insert(p) }
        }
        return out
    }

    func path(_ i: Int, _ object: String, client: String = "c1") -> String { mirrors[i].storageRoot + "/\(client)/" + object }

    var keys: ClientKeys { try! ClientKeys.load(path: dir.file("etc/secret")) }

    var opener: Opener {
        let key = try! PrivateKey(contentsOf: keysDirectory + "/private.pem", passphrase: Array(passphrase.utf8))
        return try! Opener(key: key, certificate: try! Certificate(contentsOf: keysDirectory + "/recipient.pem"))
    }

    /// All chunks on mirror `i`, decrypted, decompressed and checked against their IDs.
    func chunks(_ i: Int) throws -> [ChunkID: (kind: ChunkKind, bytes: [UInt8])] {
        let opener = self.opener
        let keys = self.keys
        let d = ChunkDecompressor()
        var out: [ChunkID: (ChunkKind, [UInt8])] = [:]
        for o in objects(i) where o.hasSuffix(".pack") {
            let (plain, entries) = try pack(i, o, opener: opener)
            for e in entries {
                let stored = plain[e.offset..<(e.offset + e.storedLength)]
                let bytes = try Array(stored).withUnsafeBytes { try d.decompress($0, form: e.form, plainLength: e.plainLength) }
                guard bytes.withUnsafeBytes({ keys.chunkID($0) }) == e.id else { throw FixtureError("chunk \(e.id) does not match its ID") }
                out[e.id] = (e.kind, bytes)
            }
        }
        return out
    }

    /// Pack `object` on mirror `i`, decrypted: its plaintext and its table.
    func pack(_ i: Int, _ object: String, opener: Opener) throws -> (plaintext: [UInt8], entries: [PackEntry]) {
        let plain = try opener.open([UInt8](FileManager.default.contents(atPath: path(i, object))!)).plaintext
        return (plain, try PackFormat.parseTable(plain, name: object))
    }

    /// The catalogs on mirror `i`, verified with the client's signing key.
    func catalogs(_ i: Int) throws -> [Catalog] {
        let key = try VerifyingKey(raw: Hex.decode(try String(contentsOfFile: dir.file("etc/signing.pub"), encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines))!)
        return try objects(i).filter { $0.hasSuffix(".catalog") }.sorted().map { o in
            let bytes = [UInt8](FileManager.default.contents(atPath: path(i, o))!)
            return try SignedDocument.decode(Catalog.self, from: bytes, name: o, verifyingKey: key).0
        }
    }

    /// The snapshot records on mirror `i`, decrypted and verified.
    func records(_ i: Int) throws -> [SnapshotRecord] {
        let key = keys.signingKey().publicKey
        return try objects(i).filter { $0.hasSuffix(".snapshot") }.sorted().map { o in
            let plain = try opener.open([UInt8](FileManager.default.contents(atPath: path(i, o))!)).plaintext
            return try SignedDocument.decode(SnapshotRecord.self, from: plain, name: o, verifyingKey: key).0
        }
    }

    /// Follows `components` from a root tree; returns that directory's entries.
    func entries(root: String, chunks: [ChunkID: (kind: ChunkKind, bytes: [UInt8])], path components: [[UInt8]]) throws -> [TreeEntry] {
        var tree = try TreeFormat.parse(chunks[Digest(hex: root)!]!.bytes)
        for c in components {
            guard let e = tree.first(where: { $0.name == c }), let sub = e.subtree, let next = chunks[sub] else {
                throw FixtureError("no directory \(String(decoding: c, as: UTF8.self)) in the snapshot")
            }
            tree = try TreeFormat.parse(next.bytes)
        }
        return tree
    }

    var sourceComponents: [[UInt8]] { source.split(separator: "/").map { Array($0.utf8) } }
}

extension SnapshotFixture {
    /// The invariants that must hold whenever fbk is not running.
    func checkInvariants(after what: String) throws {
        let f = self
        let index = try Index.open(path: f.dir.file("state/index.sqlite"))   // it opens (quick_check, schema)
        let present = Set(f.objects(0)).union(f.objects(1))
        // Every chunk the index knows lives in a pack present on at least one mirror.
        let packs = Set(try index.chunks.chunkPacks().values)
        for p in packs { #expect(present.contains(p), "\(what): index chunk in \(p), which no mirror has") }
        // No snapshot is recorded whose packs are not all stored.
        for id in try index.ledger.snapshotIDs {
            let catalogPath = ObjectName.catalog(id).path
            let holder = f.objects(0).contains(catalogPath) ? 0 : 1
            let data = [UInt8](FileManager.default.contents(atPath: f.path(holder, catalogPath)) ?? Data())
            let catalog = try SignedDocument.decode(Catalog.self, from: data, name: catalogPath, verifyingKey: nil).0
            for p in catalog.packs { #expect(present.contains(p.path), "\(what): snapshot \(id) needs \(p.path), which no mirror has") }
        }
    }
}
