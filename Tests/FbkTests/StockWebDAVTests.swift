import Foundation
import Backend
import Format
import Platform
import Testing
import TestSupport

/// fbk against WebDAV servers as they ship, configured by nobody for fbk
/// (issue: mirrors beyond our own nginx): nginx with create_full_put_path
/// off, Apache httpd mod_dav, rclone serve webdav. A first snapshot makes
/// the directories it needs (MKCOL), a rerun asks for none, restore, check
/// and prune work, and each server's answer to a second PUT of a name is
/// one the client reads safely (FORMAT.md 2, "What an answer means").
@Suite(.serialized, .hangGuard) struct StockWebDAVTests {
    final class Client: @unchecked Sendable {
        let server: StockDAVServer
        let dir: TemporaryDirectory
        let passphrase = "stock passphrase"
        var configPath: String { dir.file("etc/fbk.conf") }
        var source: String { dir.file("src") }
        var password: String { dir.file("password") }

        init(_ kind: StockDAVServer.Kind) throws {
            server = try StockDAVServer(kind)
            dir = try TemporaryDirectory()
            try FileManager.default.createDirectory(atPath: source, withIntermediateDirectories: true)
            let keygen = try CLI.run(["keygen", "--out", dir.file("keys"), "--type", "p384"], environment: ["FBK_PASSPHRASE": passphrase])
            guard keygen.status == 0 else { throw FixtureError("keygen: \(keygen.stderr)") }
            chmod(try dir.write("password", Array((server.password + "\n").utf8)), 0o600)
            let r = try CLI.run(["init", "--config", configPath, "--client", "c1", "--recipient", dir.file("keys/recipient.pem"),
                                 "--mirror", server.url("c1"), "--password-file", password, "--state", dir.file("state"), source])
            guard r.status == 0 else { throw FixtureError("init: \(r.stderr)") }
        }

        func snapshot() throws -> (status: Int32, summary: [String: Any], stderr: String) {
            let r = try CLI.run(["snapshot", "--config", configPath, "--json"])
            return (r.status, (try? JSONSerialization.jsonObject(with: r.stdoutBytes)) as? [String: Any] ?? [:], r.stderr)
        }
    }

    @Test(arguments: StockDAVServer.Kind.allCases)
    func snapshotRerunRestoreCheckAndPruneOnAStockServer(_ kind: StockDAVServer.Kind) throws {
        let c = try Client(kind)
        try c.dir.write("src/a", sampleBytes(300_000, seed: 1))
        try c.dir.write("src/sub/b", Array("stock webdav\n".utf8))
        let first = try c.snapshot()
        #expect(first.status == 0, "\(kind): \(first.stderr)")
        let root = c.server.storageRoot + "/c1"
        #expect(FileManager.default.fileExists(atPath: root + "/" + ObjectName.escrow.path), "\(kind)")
        if kind != .rclone {
            #expect(Set(c.server.requests("MKCOL")).isSuperset(of: ["/c1/", "/c1/keys/", "/c1/packs/", "/c1/snapshots/"]), "\(kind): \(c.server.requests("MKCOL"))")
        }

        // Steady state: directories are known from the index; only one a new pack needs is asked for.
        try c.dir.write("src/c", sampleBytes(100_000, seed: 2))
        let again = try c.snapshot()
        #expect(again.status == 0, "\(kind): \(again.stderr)")
        let all = c.server.requests("MKCOL")
        if kind != .rclone { #expect(all.count == Set(all).count, "\(kind): a directory was asked for twice: \(all)") }

        // Restore with the same account (such servers have no operator port).
        let target = c.dir.file("restored")
        let r = try CLI.run(["restore", "--from", c.server.rootURL, "--user", c.server.user, "--password-file", c.password,
                             "--client", "c1", "--signing-key", c.dir.file("etc/signing.pub"),
                             "--key", c.dir.file("keys/private.pem"), "latest", "--target", target],
                            environment: ["FBK_PASSPHRASE": c.passphrase])
        #expect(r.status == 0, "\(kind): \(r.stdout) \(r.stderr)")
        #expect(FileManager.default.contents(atPath: target + c.source + "/a").map([UInt8].init) == sampleBytes(300_000, seed: 1))

        // The key-less check reads the server's directory; prune moves and deletes through WebDAV.
        let key = try String(contentsOfFile: c.dir.file("etc/signing.pub"), encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let conf = try c.dir.write("check.conf", Array("""
            clients:
              - name: c1
                kind: fbk
                signing_key: \(key)
                retention:
                  keep_within: 20d
                  keep_last: 1

            """.utf8))
        let check = try CLI.run(["check", "--config", conf, "--root", c.server.storageRoot])
        #expect(check.status == 0, "\(kind): \(check.stdout)")
        let prune = try CLI.run(["prune", "--config", conf, "--url", c.server.rootURL, "--user", c.server.user, "--password-file", c.password,
                                 "--json"], environment: ["FBK_TEST_NOW": String(Date().timeIntervalSince1970 + 40 * 86_400)])
        #expect(prune.status == 0, "\(kind): \(prune.stdout) \(prune.stderr)")
        let plan = ((try? JSONSerialization.jsonObject(with: prune.stdoutBytes)) as? [String: Any]).flatMap { ($0["clients"] as? [[String: Any]])?.first } ?? [:]
        #expect((plan["removed_snapshots"] as? [String])?.count == 1, "\(kind): the older snapshot goes, keep_last keeps the newer: \(plan)")
        #expect(FileManager.default.fileExists(atPath: c.server.storageRoot + "/.fbk-trash/c1"), "\(kind)")
    }

    /// What each server answers to a second PUT of a name, and what the
    /// client makes of it: never a failure, never a different object.
    @Test(arguments: StockDAVServer.Kind.allCases)
    func aSecondPutOfANameIsReadSafely(_ kind: StockDAVServer.Kind) throws {
        let server = try StockDAVServer(kind)
        let dir = try TemporaryDirectory()
        let password = try dir.write("password", Array(server.password.utf8))
        chmod(password, 0o600)
        let backend = try WebDAVBackend(url: server.url("c1"), user: server.user, passwordFile: password, options: MirrorOptions())
        let file = try dir.write("object", sampleBytes(10_000, seed: 3))
        let path = "packs/ab/ab" + String(repeating: "1", count: 62) + ".pack"
        #expect(try backend.put(path, from: file, size: 10_000) == .stored)
        let second = try backend.put(path, from: file, size: 10_000)
        switch kind {
        case .nginx: #expect(second == .stored, "nginx replaces (204) with the same bytes")
        case .apache: #expect(second == .alreadyPresent, "Apache honours If-None-Match: * (412)")
        case .rclone: #expect(second == .stored || second == .alreadyPresent)
        }
        #expect(FileManager.default.contents(atPath: server.storageRoot + "/c1/" + path).map([UInt8].init) == sampleBytes(10_000, seed: 3))
    }

    /// A server that answers 403 to a PUT of a name it holds (some refuse
    /// to replace that way): the object counts as there only if a PROPFIND
    /// of that one name shows it at the expected size; otherwise the 403 is
    /// a permanent failure, never taken for "stored".
    @Test func aRefusedPutCountsAsStoredOnlyIfTheServerShowsTheObject() throws {
        let server = try StockDAVServer(.nginx)
        let dir = try TemporaryDirectory()
        let password = try dir.write("password", Array(server.password.utf8))
        chmod(password, 0o600)
        let file = try dir.write("object", sampleBytes(10_000, seed: 4))
        let path = "packs/ab/ab" + String(repeating: "2", count: 62) + ".pack"
        #expect(try WebDAVBackend(url: server.url("c1"), user: server.user, passwordFile: password, options: MirrorOptions())
            .put(path, from: file, size: 10_000) == .stored)
        let proxy = try MirrorFaultTests.FaultProxy(upstream: server.port, dir: dir, name: "refusing")
        try proxy.set("403put")
        let refusing = try WebDAVBackend(url: proxy.url("c1"), user: server.user, passwordFile: password, options: MirrorOptions())
        refusing.assumeDirectories(["", "packs", "packs/ab"])
        #expect(try refusing.put(path, from: file, size: 10_000) == .alreadyPresent)
        let other = "packs/ab/ab" + String(repeating: "3", count: 62) + ".pack"
        do {
            _ = try refusing.put(other, from: file, size: 10_000)
            Issue.record("a 403 for an object the server does not show was taken for stored")
        } catch {
            #expect(error.kind == .permanent, "\(error)")
        }
        let shorter = try dir.write("shorter", sampleBytes(9_999, seed: 4))
        #expect(throws: BackendError.self, "an object of another size is not the one being put") {
            _ = try refusing.put(path, from: shorter, size: 9_999)
        }
    }

    /// The device scripts make the client's directory and blobs/ before
    /// their first upload, so a stock server takes their blobs too.
    @Test(arguments: StockDAVServer.Kind.allCases)
    func deviceScriptsMakeTheirDirectories(_ kind: StockDAVServer.Kind) throws {
        let server = try StockDAVServer(kind)
        let dir = try TemporaryDirectory()
        #expect(try CLI.run(["keygen", "--out", dir.file("keys"), "--type", "p384", "--allow-short-passphrase"], environment: ["FBK_PASSPHRASE": "pw"]).status == 0)
        let pw = try dir.write("password", Array("\(server.password)\n".utf8))
        chmod(pw, 0o600)
        try FileManager.default.createDirectory(atPath: dir.file("tmp"), withIntermediateDirectories: true)
        let conf = try dir.write("device.conf", Array("""
            CLIENT=c1
            MIRRORS="\(server.url("c1"))"
            PASSWORD_FILE=\(pw)
            RECIPIENT=\(dir.file("keys/recipient.pem"))
            TMP=\(dir.file("tmp"))
            """.utf8))
        let script = try dir.write("upload.sh", Array("""
            . "$FBK_DEVICE_CONF"
            . "$FBK_DEVICE_LIB"
            fbk_setup
            printf 'router configuration\\n' | fbk_blob conf
            exit "$FAILED"
            """.utf8))
        let r = try runTool("busybox", ["sh", script], environment: ["FBK_DEVICE_CONF": conf, "FBK_DEVICE_LIB": repositoryRoot + "/contrib/fbk-device-lib.sh"])
        #expect(r.status == 0, "\(kind): \(r.stderr)")
        let blobs = (try? FileManager.default.contentsOfDirectory(atPath: server.storageRoot + "/c1/blobs")) ?? []
        #expect(blobs.count == 1 && blobs[0].hasPrefix("conf-") && blobs[0].hasSuffix(".cms"), "\(kind): \(blobs)")
    }
}
