import Foundation
@testable import Backend
import Config
import Format
import Platform
import Seal
import Testing
import TestSupport

/// What the S3 backend does beyond the contract every backend keeps
/// (BackendConformanceTests), against moto_server with deploy/s3's IAM
/// policies enforced (S3Server).
@Suite(.serialized) struct S3BackendTests {
    let s3: S3Server
    let scratch: TemporaryDirectory
    let root: String

    init() throws {
        s3 = try S3Server.shared()
        scratch = try TemporaryDirectory()
        root = s3.root(prefix: "unit-" + UUID().uuidString.prefix(8).lowercased())
    }

    func settings(_ user: String, lock: S3Settings.ObjectLock? = nil, endpoint: String? = nil) -> S3Settings {
        S3Settings(endpoint: endpoint ?? s3.endpoint, credentialsFile: s3.credentials(user), objectLock: lock)
    }

    func client(_ lock: S3Settings.ObjectLock? = .init(mode: .compliance, days: 2), bucketRoot: String? = nil) throws -> S3Backend {
        try S3Backend(url: (bucketRoot ?? root) + "c1/", settings: settings("fbk-client", lock: lock), reads: false)
    }

    func reader(_ user: String = "fbk-operator", bucketRoot: String? = nil) throws -> S3Backend {
        try S3Backend(storageRoot: bucketRoot ?? root, client: "c1", settings: settings(user))
    }

    func file(_ bytes: [UInt8]) throws -> String { try scratch.write(UUID().uuidString, bytes) }

    static func packPath(_ bytes: [UInt8]) -> String { ObjectName.pack(PackID(sha256: SHA256.hash(bytes))).path }

    func failure(_ body: () throws -> Void) -> BackendError? {
        do { try body() } catch let e as BackendError { return e } catch { return nil }
        return nil
    }

    @Test func aClientsCredentialsCreateButCannotReadListOrDelete() throws {
        let c = try client()
        let bytes = sampleBytes(5_000, seed: 1)
        #expect(try c.put(Self.packPath(bytes), from: try file(bytes), size: bytes.count) == .stored)
        for (what, body) in [("get", { _ = try c.fetch(Self.packPath(bytes), limit: 1 << 20) }),
                             ("head", { _ = try c.stat(Self.packPath(bytes)) }),
                             ("list", { _ = try c.list(.pack) }),
                             ("delete", { try c.delete(Self.packPath(bytes)) })] as [(String, () throws -> Void)] {
            let e = failure(body)
            #expect(e?.kind == .permanent && e?.misconfigured == true, "\(what): \(String(describing: e))")
        }
        // The server's clock comes from any answer, a refusal included.
        #expect(try c.serverTime().map { abs($0.timeIntervalSinceNow) < 120 } == true)
    }

    @Test func everyObjectGetsItsLockAndNoOneRemovesItBeforeTheDate() throws {
        let c = try client(.init(mode: .compliance, days: 3))
        let bytes = sampleBytes(5_000, seed: 2)
        let path = Self.packPath(bytes)
        #expect(try c.put(path, from: try file(bytes), size: bytes.count) == .stored)
        let pruner = try reader("fbk-prune")
        let until = try #require(try pruner.retainedUntil(path))
        #expect(abs(until.timeIntervalSinceNow - 3 * 86_400) < 600, "\(until)")
        let refused = failure { try pruner.delete(path) }
        #expect(refused?.retainedUntil != nil, "\(String(describing: refused))")
        // Not prune's check alone: the server itself refuses, to the bucket's administrator too.
        let admin = try reader("admin")
        let version = try runTool("curl", ["-s", "-I", "--aws-sigv4", "aws:amz:us-east-1:s3", "-u", try keyPair("admin"),
                                           "-H", "x-amz-content-sha256: \(emptySHA)", s3.endpoint + "/fbk/" + String(root.dropFirst("s3://fbk/".count)) + "c1/" + path])
        let id = String(decoding: version.stdout, as: UTF8.self).split(separator: "\r\n").first { $0.lowercased().hasPrefix("x-amz-version-id:") }
            .map { $0.dropFirst("x-amz-version-id:".count).trimmingCharacters(in: .whitespaces) } ?? ""
        #expect(!id.isEmpty)
        let delete = try runTool("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "DELETE", "--aws-sigv4", "aws:amz:us-east-1:s3",
                                          "-u", try keyPair("admin"), "-H", "x-amz-content-sha256: \(emptySHA)",
                                          s3.endpoint + "/fbk/" + String(root.dropFirst("s3://fbk/".count)) + "c1/" + path + "?versionId=" + id])
        #expect(String(decoding: delete.stdout, as: UTF8.self) == "403", "a COMPLIANCE lock holds against the administrator")
        #expect(try admin.exists(path))
    }

    let emptySHA = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

    func keyPair(_ user: String) throws -> String {
        let text = try String(contentsOfFile: s3.credentials(user), encoding: .utf8)
        func value(_ k: String) -> String {
            text.split(separator: "\n").first { $0.hasPrefix(k) }.map { $0.split(separator: "=", maxSplits: 1)[1].trimmingCharacters(in: .whitespaces) } ?? ""
        }
        return value("aws_access_key_id") + ":" + value("aws_secret_access_key")
    }

    @Test func anUnlockedObjectIsRemovedForGoodNotHiddenBehindAMarker() throws {
        let c = try client(nil)
        let bytes = sampleBytes(5_000, seed: 3)
        let path = Self.packPath(bytes)
        #expect(try c.put(path, from: try file(bytes), size: bytes.count) == .stored)
        let pruner = try reader("fbk-prune")
        #expect(try pruner.retainedUntil(path) == nil)
        try pruner.delete(path)
        #expect(try !pruner.exists(path))
        // No version is left behind: the bucket's version listing has none of that key.
        let key = String(root.dropFirst("s3://fbk/".count)) + "c1/" + path
        let versions = try runTool("curl", ["-s", "--aws-sigv4", "aws:amz:us-east-1:s3", "-u", try keyPair("admin"), "-H", "x-amz-content-sha256: \(emptySHA)",
                                            s3.endpoint + "/fbk?prefix=" + key.replacingOccurrences(of: "/", with: "%2F") + "&versions="])
        let listing = String(decoding: versions.stdout, as: UTF8.self)
        #expect(listing.contains("ListVersionsResult") && !listing.contains("<Key>"), "\(listing)")
    }

    @Test func aLargeObjectGoesInPartsAndIsStillCreateOnly() throws {
        var s = settings("fbk-client", lock: .init(mode: .governance, days: 1))
        s.multipartThreshold = 6 << 20
        s.partSize = 5 << 20
        let c = try S3Backend(url: root + "c1/", settings: s, reads: false)
        let bytes = sampleBytes(12 << 20, seed: 4)
        let path = Self.packPath(bytes)
        let local = try file(bytes)
        #expect(try c.put(path, from: local, size: bytes.count) == .stored)
        let r = try reader()
        let read = try r.read(path, limit: 16 << 20, what: "pack") == bytes
        #expect(read)
        #expect(try c.put(path, from: local, size: bytes.count) == .alreadyPresent, "If-None-Match: * on the completion")
        #expect(try reader("fbk-prune").retainedUntil(path) != nil, "the lock is given at the upload's creation")
    }

    @Test func virtualHostAddressing() throws {
        var s = settings("fbk-client", endpoint: s3.namedEndpoint)
        s.virtualHost = true
        let c = try S3Backend(url: root + "c1/", settings: s, reads: false)
        #expect(c.url("c1/x").hasPrefix("http://fbk.localhost:"))
        let bytes = sampleBytes(1_000, seed: 5)
        #expect(try c.put(Self.packPath(bytes), from: try file(bytes), size: bytes.count) == .stored)
        var rs = settings("fbk-operator", endpoint: s3.namedEndpoint)
        rs.virtualHost = true
        let r = try S3Backend(storageRoot: root, client: "c1", settings: rs)
        #expect(try r.list(.pack).map(\.path) == [Self.packPath(bytes)])
    }

    @Test func wrongKeysWrongBucketAndNoLockAreConfigurationErrorsThatSayWhy() throws {
        let bad = try scratch.write("bad", Array("aws_access_key_id = \(try keyPair("fbk-client").split(separator: ":")[0])\naws_secret_access_key = wrong\n".utf8))
        chmod(bad, 0o600)
        let c = try S3Backend(url: root + "c1/", settings: S3Settings(endpoint: s3.endpoint, credentialsFile: bad), reads: false)
        let bytes = sampleBytes(100, seed: 6)
        let wrongKey = failure { _ = try c.put(Self.packPath(bytes), from: try file(bytes), size: bytes.count) }
        #expect(wrongKey?.misconfigured == true && wrongKey?.description.contains("SignatureDoesNotMatch") == true, "\(String(describing: wrongKey))")

        let noBucket = try S3Backend(url: "s3://no-such-bucket/x/c1/", settings: settings("fbk-client"), reads: false)
        let missing = failure { _ = try noBucket.put(Self.packPath(bytes), from: try file(bytes), size: bytes.count) }
        #expect(missing?.kind == .permanent, "\(String(describing: missing))")

        let plain = try client(.init(mode: .compliance, days: 1), bucketRoot: s3.root("fbk-plain"))
        let noLock = failure { _ = try plain.put(Self.packPath(bytes), from: try file(bytes), size: bytes.count) }
        #expect(noLock?.misconfigured == true && noLock?.description.contains("Object Lock") == true, "\(String(describing: noLock))")
        // Without object_lock the same bucket takes it.
        #expect(try client(nil, bucketRoot: s3.root("fbk-plain")).put(Self.packPath(bytes), from: try file(bytes), size: bytes.count) == .stored)
    }

    @Test func aClientsCredentialsFileMustBePrivate() throws {
        let open = try scratch.write("open", Array(try String(contentsOfFile: s3.credentials("fbk-client"), encoding: .utf8).utf8))
        chmod(open, 0o644)
        #expect(throws: StoreError.self) { _ = try S3Backend(url: root + "c1/", settings: S3Settings(endpoint: s3.endpoint, credentialsFile: open), reads: false) }
    }

    /// A listing is the server's word: entries without a valid size are
    /// dropped, keys and tokens are decoded, times are read to the nanosecond.
    @Test func listingsAreReadDefensively() throws {
        let page = S3XML.listPage(Array("""
            <ListBucketResult><Contents><Key>a%2Fb</Key><Size>-1</Size></Contents>\
            <Contents><Key>x%2Fok</Key><Size>3</Size><LastModified>2026-12-06T20:27:45.123Z</LastModified></Contents>\
            <Contents><Key>late</Key><Size>99999999999999999999999</Size></Contents>\
            <IsTruncated>true</IsTruncated><NextContinuationToken>t&amp;1</NextContinuationToken></ListBucketResult>
            """.utf8))
        #expect(page.objects.map(\.key) == ["x/ok"])
        #expect(page.objects.first?.nanoseconds == 123_000_000)
        #expect(page.nextToken == "t&1")
        #expect(S3XML.isoDate("2026-13-06T20:27:45Z") == nil && S3XML.isoDate("2026-12-06T20:27:45.1234567891Z") == nil)
        #expect(S3XML.error(Array("<Error><Code>AccessDenied</Code><Message>no</Message></Error>".utf8))?.code == "AccessDenied")
    }
}
