import Foundation
@testable import Platform
@testable import Backend
import Testing
import TestSupport

/// The nginx rules in deploy/nginx, proved with real HTTP requests.
@Suite(.serialized) struct NginxPolicyTests {
    static let nginx = try! NginxMirror(users: ["alice": "alice-pw", "bob": "bob-pw"])

    func curl(_ method: String, _ path: String, auth: String? = "alice:alice-pw", body: String? = nil,
              headers: [String] = []) throws -> (status: Int, body: String) {
        let dir = try TemporaryDirectory()
        var args = ["-s", "-o", dir.file("body"), "-w", "%{http_code}", "-X", method]
        if let auth { args += ["-u", auth] }
        if let body { args += ["--data-binary", "@" + (try dir.write("in", Array(body.utf8)))] }
        for h in headers { args += ["-H", h] }
        args.append("http://127.0.0.1:\(Self.nginx.port)\(path)")
        if method == "HEAD" { args = args.filter { $0 != "-X" && $0 != "HEAD" } + ["-I"] }
        let r = try runTool("curl", args)
        return (Int(String(decoding: r.stdout, as: UTF8.self)) ?? -1,
                String(decoding: FileManager.default.contents(atPath: dir.file("body")) ?? Data(), as: UTF8.self))
    }

    @Test func putCreatesAndNeverOverwrites() throws {
        #expect(try curl("PUT", "/alice/packs/aa/one.pack", body: "first").status == 201)
        let again = try curl("PUT", "/alice/packs/aa/one.pack", body: "second")
        #expect(again.status == 409)
        #expect(again.body.contains("fbk-object-exists"))
        let stored = try String(contentsOfFile: Self.nginx.storageRoot + "/alice/packs/aa/one.pack", encoding: .utf8)
        #expect(stored == "first")
    }

    @Test func nothingCanBeReadDeletedMovedOrCopied() throws {
        #expect(try curl("PUT", "/alice/x.pack", body: "data").status == 201)
        for method in ["GET", "HEAD", "DELETE", "PROPFIND", "OPTIONS"] {
            #expect(try curl(method, "/alice/x.pack").status == 403, "\(method)")
        }
        #expect(try curl("MOVE", "/alice/x.pack", headers: ["Destination: /alice/y.pack"]).status == 403)
        #expect(try curl("COPY", "/alice/x.pack", headers: ["Destination: /alice/z.pack"]).status == 403)
        #expect(FileManager.default.fileExists(atPath: Self.nginx.storageRoot + "/alice/x.pack"))
        #expect(!FileManager.default.fileExists(atPath: Self.nginx.storageRoot + "/alice/y.pack"))
    }

    @Test func eachClientWritesOnlyItsOwnDirectory() throws {
        #expect(try curl("PUT", "/bob/intruder.pack", body: "x").status == 403)
        #expect(try curl("PUT", "/alice/../bob/intruder2.pack", body: "x").status == 403)
        #expect(try curl("PUT", "/toplevel.pack", body: "x").status == 403)
        #expect(try curl("PUT", "/bob/own.pack", auth: "bob:bob-pw", body: "x").status == 201)
        #expect(!FileManager.default.fileExists(atPath: Self.nginx.storageRoot + "/bob/intruder.pack"))
    }

    @Test func wrongOrMissingPasswordIsRefused() throws {
        #expect(try curl("PUT", "/alice/p1.pack", auth: "alice:wrong", body: "x").status == 401)
        // Without credentials nginx refuses before authentication (the user is not the directory's).
        #expect([401, 403].contains(try curl("PUT", "/alice/p2.pack", auth: nil, body: "x").status))
        #expect(!FileManager.default.fileExists(atPath: Self.nginx.storageRoot + "/alice/p2.pack"))
        #expect(!FileManager.default.fileExists(atPath: Self.nginx.storageRoot + "/alice/p1.pack"))
    }
}

@Suite(.serialized) struct WebDAVBackendTests {
    static let nginx = try! NginxMirror(users: ["c1": "secret-1"])

    func mirror(password: String = "secret-1", client: String = "c1", port: Int? = nil) throws -> WebDAVBackend {
        let dir = try TemporaryDirectory()
        let pw = try dir.write("pw", Array(password.utf8))
        chmod(pw, 0o600)
        var o = MirrorOptions()
        o.retryDelays = [0.05]
        o.connectTimeout = 2
        let url = port.map { "http://127.0.0.1:\($0)/\(client)/" } ?? Self.nginx.url(client)
        return try WebDAVBackend(url: url, user: client, passwordFile: pw, options: o)
    }

    @Test func storesOnceThenReportsPresent() throws {
        let dir = try TemporaryDirectory()
        let file = try dir.write("obj", (0..<100_000).map { UInt8(truncatingIfNeeded: $0) })
        let m = try mirror()
        #expect(try m.put("packs/ab/obj.pack", from: file, size: 100_000) == .stored)
        #expect(try m.put("packs/ab/obj.pack", from: file, size: 100_000) == .alreadyPresent)
        #expect(FileManager.default.contents(atPath: Self.nginx.storageRoot + "/c1/packs/ab/obj.pack") == FileManager.default.contents(atPath: file))
    }

    @Test(.enabled(if: ipv6LoopbackAvailable, "needs the IPv6 loopback address"))
    func ipv6LiteralURLsWork() throws {
        let dir = try TemporaryDirectory()
        let file = try dir.write("obj", [4, 5, 6])
        let pw = try dir.write("pw", Array("secret-1".utf8))
        chmod(pw, 0o600)
        let m = try WebDAVBackend(url: Self.nginx.ipv6URL("c1"), user: "c1", passwordFile: pw, options: MirrorOptions())
        #expect(try m.put("v6/obj.pack", from: file, size: 3) == .stored)
        #expect(FileManager.default.contents(atPath: Self.nginx.storageRoot + "/c1/v6/obj.pack") == Data([4, 5, 6]))
    }

    @Test func credentialsAndForbiddenDirectoriesArePermanentFailures() throws {
        let dir = try TemporaryDirectory()
        let file = try dir.write("obj", [1, 2, 3])
        do {
            _ = try mirror(password: "nope").put("a.pack", from: file, size: 3)
            Issue.record("wrong password accepted")
        } catch let error as MirrorFailure {
            #expect(error.permanent && error.message.contains("401"))
        }
        do {
            _ = try mirror(client: "c2").put("a.pack", from: file, size: 3)
            Issue.record("foreign directory accepted")
        } catch let error as MirrorFailure {
            #expect(error.permanent)
        }
    }

    @Test func unreachableMirrorIsATransientFailure() throws {
        let dir = try TemporaryDirectory()
        let file = try dir.write("obj", [1, 2, 3])
        let port = try freePort()
        do {
            _ = try mirror(port: port).put("a.pack", from: file, size: 3)
            Issue.record("a closed port accepted an upload")
        } catch let error as MirrorFailure {
            #expect(!error.permanent)
            #expect(error.message.contains("curl error 7"), "\(error.message)")
        }
    }
}

@Suite struct DirectoryBackendTests {
    /// A symbolic link planted in place of a directory on the way (packs/ab)
    /// leads neither a read nor a write out of the client's directory.
    @Test func aLinkPlantedInPlaceOfADirectoryIsRefused() throws {
        let dir = try TemporaryDirectory()
        let pack = "packs/ab/ab" + String(repeating: "0", count: 62) + ".pack"
        try dir.write("elsewhere/ab" + String(repeating: "0", count: 62) + ".pack", Array("another client's".utf8))
        try FileManager.default.createDirectory(atPath: dir.file("mirror/c1/packs"), withIntermediateDirectories: true)
        #expect(symlink(dir.file("elsewhere"), dir.file("mirror/c1/packs/ab")) == 0)
        let m = try DirectoryBackend(url: "file://" + dir.file("mirror/c1/"))
        do {
            _ = try m.fetch(pack, limit: 1 << 20)
            Issue.record("read through a planted link")
        } catch {
            #expect(error.kind == .permanent && error.message.contains("not a directory"), "\(error)")
        }
        let file = try dir.write("new", [1, 2, 3])
        #expect(throws: BackendError.self) { try m.put("packs/ab/new.pack", from: file, size: 3) }
        #expect(!FileManager.default.fileExists(atPath: dir.file("elsewhere/new.pack")))
        #expect(try m.list(.pack).isEmpty)
    }

    @Test func createOnlyWithExactBytes() throws {
        let dir = try TemporaryDirectory()
        let file = try dir.write("obj", [5, 6, 7])
        let m = try DirectoryBackend(url: "file://" + dir.file("mirror/c1/"))
        #expect(try m.put("packs/aa/x.pack", from: file, size: 3) == .stored)
        let other = try dir.write("other", [9])
        #expect(try m.put("packs/aa/x.pack", from: other, size: 1) == .alreadyPresent)
        #expect(dir.read("mirror/c1/packs/aa/x.pack") == [5, 6, 7])
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.file("mirror/c1/packs/aa")) == ["x.pack"])
        #expect(throws: StoreError.self) { try DirectoryBackend(url: "file://relative/path") }
    }
}
