import Foundation
import Backend
import Format
import Platform
import Seal
import Testing
import TestSupport

/// The storage backends fbk has, each made fresh (an empty client
/// directory) for one test. A new backend is done when every test of
/// `BackendConformanceTests` passes for it.
enum BackendUnderTest: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case memory, directory, webdav
    /// WebDAV servers as they ship, configured by nobody for fbk (StockDAVServer).
    case stockNginx, apache, rclone
    /// S3 (moto_server, S3Server): uploads with deploy/s3's client
    /// credentials into a bucket with Object Lock, reads with the operator's.
    case s3

    var testDescription: String { rawValue }

    /// A backend and whatever must live as long as it (a directory, a server).
    struct Made {
        let backend: any Backend
        let fixtures: [AnyObject]
    }

    func make() throws -> Made {
        switch self {
        case .memory:
            return Made(backend: try MemoryBackend(), fixtures: [])
        case .directory:
            let dir = try TemporaryDirectory()
            return Made(backend: try DirectoryBackend(url: "file://" + dir.file("storage/c1/")), fixtures: [dir])
        case .webdav:
            // Real nginx with deploy/nginx: uploads with the client's account,
            // reads with the operator's on its own port.
            let nginx = try NginxMirror(users: ["c1": "client-pw"])
            let dir = try TemporaryDirectory()
            let clientPassword = try dir.write("client-pw", Array("client-pw".utf8))
            chmod(clientPassword, 0o600)
            let operatorPassword = try dir.write("operator-pw", Array("operator-pw".utf8))
            let backend = try WebDAVBackend(
                writer: .init(url: nginx.url("c1"), user: "c1", passwordFile: clientPassword, mustBePrivate: true),
                reader: .init(url: nginx.operatorURL + "c1/", user: "operator", passwordFile: operatorPassword, mustBePrivate: false),
                options: MirrorOptions())
            return Made(backend: backend, fixtures: [nginx, dir])
        case .stockNginx, .apache, .rclone:
            // One account reads and writes, as on such servers.
            let server = try StockDAVServer(self == .stockNginx ? .nginx : self == .apache ? .apache : .rclone)
            let dir = try TemporaryDirectory()
            let password = try dir.write("pw", Array(server.password.utf8))
            chmod(password, 0o600)
            let account = try WebDAVBackend.Account(url: server.url("c1"), user: server.user, passwordFile: password, mustBePrivate: true)
            return Made(backend: try WebDAVBackend(writer: account, reader: account, options: MirrorOptions()), fixtures: [server, dir])
        case .s3:
            let server = try S3Server.shared()
            let root = server.root(prefix: "conformance-" + UUID().uuidString.prefix(8).lowercased())
            var writing = S3Settings(endpoint: server.endpoint, credentialsFile: server.credentials("fbk-client"),
                                     objectLock: .init(mode: .compliance, days: 1))
            writing.multipartThreshold = 64 << 20
            let reading = S3Settings(endpoint: server.endpoint, credentialsFile: server.credentials("fbk-operator"))
            return Made(backend: SplitBackend(writer: try S3Backend(url: root + "c1/", settings: writing, reads: false),
                                              reader: try S3Backend(url: root + "c1/", settings: reading, reads: true)),
                        fixtures: [server])
        }
    }

    /// Whether a second put of a name with other bytes is refused. fbk's
    /// nginx rules and Apache (If-None-Match: *) refuse it; stock nginx and
    /// rclone replace the object (FORMAT.md 2: what an answer means, and
    /// why write-once needs fbk's rules).
    var refusesOverwrite: Bool { ![.stockNginx, .rclone].contains(self) }

    /// rclone answers 423 (locked) or 404 to a PUT of a name another PUT is
    /// writing at that moment. fbk never writes one name to one mirror
    /// twice at once (pack names are content hashes, records and catalogs
    /// are written once a run), so this costs nothing in use.
    var takesSimultaneousWritesOfOneName: Bool { self != .rclone }

    /// Whether two puts of one new name at the same instant tell exactly one
    /// caller `.stored`. nginx (deploy/nginx/fbk-dav.conf) tests for the
    /// file, then renames its upload into place: two PUTs racing on a name
    /// that did not exist may both get 201. Names are content hashes or
    /// random IDs, so both wrote the same bytes; an existing object is
    /// never replaced.
    var createIsAtomic: Bool { [.memory, .directory].contains(self) }

    /// A backend of this kind whose server is down (nil where there is no such thing).
    func makeDown() throws -> Made? {
        switch self {
        case .memory:
            let m = try MemoryBackend()
            m.failure = .transient
            return Made(backend: m, fixtures: [])
        case .directory, .stockNginx, .apache, .rclone:
            return nil
        case .s3:
            var options = MirrorOptions()
            options.connectTimeout = 2
            let dir = try TemporaryDirectory()
            let credentials = try dir.write("credentials", Array("aws_access_key_id = AKIA0\naws_secret_access_key = x\n".utf8))
            let settings = S3Settings(endpoint: "http://127.0.0.1:\(try freePort())", credentialsFile: credentials)
            return Made(backend: try S3Backend(url: "s3://fbk/fleet/c1/", settings: settings, reads: true, options: options), fixtures: [dir])
        case .webdav:
            let port = try freePort()
            var options = MirrorOptions()
            options.connectTimeout = 2
            let backend = try WebDAVBackend(writer: .init(url: "http://127.0.0.1:\(port)/c1/", user: "c1", passwordFile: nil, mustBePrivate: true),
                                            reader: .init(url: "http://127.0.0.1:\(port)/c1/", user: "operator", passwordFile: nil, mustBePrivate: false),
                                            options: options)
            return Made(backend: backend, fixtures: [])
        }
    }
}

/// A client's upload credentials and an operator's read credentials on one
/// directory: the way fbk uses S3, as one backend for the contract's tests.
final class SplitBackend: Backend, @unchecked Sendable {
    let writer: any Backend, reader: any Backend
    init(writer: any Backend, reader: any Backend) { (self.writer, self.reader) = (writer, reader) }
    var location: String { writer.location }
    func put(_ path: String, from localFile: String, size: Int) throws(BackendError) -> PutOutcome { try writer.put(path, from: localFile, size: size) }
    func fetch(_ path: String, limit: Int) throws(BackendError) -> FetchedObject { try reader.fetch(path, limit: limit) }
    func fetch(_ path: String, range: Range<Int>) throws(BackendError) -> [UInt8] { try reader.fetch(path, range: range) }
    func stat(_ path: String) throws(BackendError) -> StoredObject { try reader.stat(path) }
    func list(_ kind: ObjectKind) throws(BackendError) -> [StoredObject] { try reader.list(kind) }
    func inventory() throws(BackendError) -> Inventory { try reader.inventory() }
}

/// The contract every backend keeps (Backend.swift, FORMAT.md 2): the
/// same cases against memory, a directory, and WebDAV on real nginx.
@Suite struct BackendConformanceTests {
    let scratch: TemporaryDirectory

    init() throws { scratch = try TemporaryDirectory() }

    /// Writes bytes to a local file and puts them under `path`.
    @discardableResult
    func put(_ backend: any Backend, _ path: String, _ bytes: [UInt8]) throws -> PutOutcome {
        let file = try scratch.write(UUID().uuidString, bytes)
        return try backend.put(path, from: file, size: bytes.count)
    }

    func kind(of body: () throws -> Void) -> BackendError.Kind? {
        do { try body() } catch let e as BackendError { return e.kind } catch { return nil }
        return nil
    }

    static let packBytes = Array("a sealed pack, as far as storage knows".utf8)
    static var packPath: String { ObjectName.pack(PackID(sha256: SHA256.hash(packBytes))).path }
    static let snapshot: SnapshotID = "20261127T030000Z-0123456789abcdef"

    @Test(arguments: BackendUnderTest.allCases)
    func putCreatesAndNeverOverwrites(_ under: BackendUnderTest) throws {
        let made = try under.make()
        defer { withExtendedLifetime(made) {} }
        let b = made.backend
        #expect(try put(b, Self.packPath, Self.packBytes) == .stored)
        guard under.refusesOverwrite else {
            // The server replaces it: a put of the same name is read as stored (the same bytes, for a content-addressed name).
            #expect(try put(b, Self.packPath, Self.packBytes) == .stored)
            #expect(try b.read(Self.packPath, limit: 1 << 20, what: "pack") == Self.packBytes)
            return
        }
        #expect(try put(b, Self.packPath, Array("other bytes".utf8)) == .alreadyPresent)
        #expect(try b.read(Self.packPath, limit: 1 << 20, what: "pack") == Self.packBytes, "the first bytes stay")
    }

    @Test(arguments: BackendUnderTest.allCases)
    func concurrentPutsOfOneNameStoreItOnce(_ under: BackendUnderTest) throws {
        let made = try under.make()
        defer { withExtendedLifetime(made) {} }
        let file = try scratch.write("same", Self.packBytes)
        let outcomes = OutcomeBox()
        // With the retries every network mirror gets (makeMirror): a server may answer 423 (locked) while another write of the name is in progress.
        let backend = RetryingBackend(made.backend, delays: [0.05, 0.1, 0.2, 0.4, 0.8])
        DispatchQueue.concurrentPerform(iterations: 6) { _ in
            do { outcomes.add(try backend.put(Self.packPath, from: file, size: Self.packBytes.count)) } catch { outcomes.fail("\(error)") }
        }
        let stored = outcomes.values.filter { $0 == .stored }.count
        if under.takesSimultaneousWritesOfOneName {
            #expect(stored + outcomes.values.filter { $0 == .alreadyPresent }.count == 6, "every put succeeds: \(outcomes.values) \(outcomes.errors)")
        }
        if under.createIsAtomic { #expect(stored == 1, "\(outcomes.values)") } else { #expect(stored >= 1) }
        #expect(try made.backend.read(Self.packPath, limit: 1 << 20, what: "pack") == Self.packBytes)
    }

    @Test(arguments: BackendUnderTest.allCases)
    func fetchGivesTheBytesWithinALimit(_ under: BackendUnderTest) throws {
        let made = try under.make()
        defer { withExtendedLifetime(made) {} }
        let b = made.backend
        try put(b, Self.packPath, Self.packBytes)
        let fetched = try b.fetch(Self.packPath, limit: Self.packBytes.count)
        #expect(fetched.size == Self.packBytes.count)
        #expect(try fetched.bytes(what: "pack") == Self.packBytes)
        #expect(kind { _ = try b.fetch(Self.packPath, limit: Self.packBytes.count - 1) } == .permanent,
                "an object larger than its kind may be is refused, not truncated")
        #expect(kind { _ = try b.fetch(ObjectName.catalog(Self.snapshot).path, limit: 1 << 20) } == .notFound)
    }

    @Test(arguments: BackendUnderTest.allCases)
    func fetchARange(_ under: BackendUnderTest) throws {
        let made = try under.make()
        defer { withExtendedLifetime(made) {} }
        let b = made.backend
        try put(b, Self.packPath, Self.packBytes)
        #expect(try b.fetch(Self.packPath, range: 2..<9) == Array(Self.packBytes[2..<9]))
        #expect(try b.fetch(Self.packPath, range: 30..<1000) == Array(Self.packBytes[30...]), "a range past the end ends with the object")
        #expect(try b.fetch(Self.packPath, range: 5000..<5010) == [])
        #expect(kind { _ = try b.fetch(ObjectName.record(Self.snapshot).path, range: 0..<4) } == .notFound)
    }

    @Test(arguments: BackendUnderTest.allCases)
    func statSaysSizeAndReceiptTime(_ under: BackendUnderTest) throws {
        let made = try under.make()
        defer { withExtendedLifetime(made) {} }
        let b = made.backend
        let before = Date()
        try put(b, Self.packPath, Self.packBytes)
        let s = try b.stat(Self.packPath)
        #expect(s.path == Self.packPath && s.size == Self.packBytes.count)
        let received = try #require(s.received)
        #expect(abs(received.timeIntervalSince(before)) < 120, "received \(received), put at \(before)")
        #expect(try b.exists(Self.packPath))
        #expect(try !b.exists(ObjectName.record(Self.snapshot).path))
        #expect(kind { _ = try b.stat(ObjectName.record(Self.snapshot).path) } == .notFound)
    }

    @Test(arguments: BackendUnderTest.allCases)
    func listGivesOnlyWellFormedNamesOfOneKind(_ under: BackendUnderTest) throws {
        let made = try under.make()
        defer { withExtendedLifetime(made) {} }
        let b = made.backend
        #expect(try b.list(.pack).isEmpty, "nothing yet: an empty list, not an error")
        try put(b, Self.packPath, Self.packBytes)
        try put(b, ObjectName.record(Self.snapshot).path, [1])
        try put(b, ObjectName.catalog(Self.snapshot).path, [2, 2])
        try put(b, ObjectName.listing(Self.snapshot).path, [3, 3, 3])
        try put(b, ObjectName.escrow.path, [4])
        try put(b, "packs/zz/not-a-pack.pack", [5])
        try put(b, "snapshots/yesterday.catalog", [6])
        #expect(try b.list(.pack).map(\.path) == [Self.packPath])
        #expect(try b.list(.pack).first?.size == Self.packBytes.count)
        #expect(try b.list(.record).map(\.path) == [ObjectName.record(Self.snapshot).path])
        #expect(try b.list(.catalog).map(\.path) == [ObjectName.catalog(Self.snapshot).path])
        #expect(try b.list(.catalog).first?.size == 2)
        #expect(try b.list(.listing).map(\.path) == [ObjectName.listing(Self.snapshot).path])
        #expect(try b.list(.escrow).map(\.path) == [ObjectName.escrow.path])
        #expect(try b.list(.blob).isEmpty)
        let everything = try b.inventory().objects.map(\.path)
        #expect(everything.contains("packs/zz/not-a-pack.pack") && everything.contains("snapshots/yesterday.catalog"),
                "the inventory names strangers too: \(everything)")
        #expect(everything.count == 7)
    }

    @Test(arguments: BackendUnderTest.allCases)
    func pathsCannotLeaveTheClientDirectory(_ under: BackendUnderTest) throws {
        let made = try under.make()
        defer { withExtendedLifetime(made) {} }
        let b = made.backend
        for path in ["../c2/x.pack", "/etc/passwd", "packs/../../x", "./x", "a//b", ""] {
            #expect(kind { try put(b, path, [1]) } == .permanent, "put \(path)")
            #expect(kind { _ = try b.fetch(path, limit: 10) } == .permanent, "fetch \(path)")
        }
    }

    @Test(arguments: BackendUnderTest.allCases)
    func aServerThatIsDownIsNeverAMissingObject(_ under: BackendUnderTest) throws {
        guard let made = try under.makeDown() else { return }
        defer { withExtendedLifetime(made) {} }
        let b = made.backend
        #expect(kind { try put(b, Self.packPath, Self.packBytes) } == .transient)
        #expect(kind { _ = try b.fetch(Self.packPath, limit: 100) } == .transient)
        #expect(kind { _ = try b.stat(Self.packPath) } == .transient)
        #expect(kind { _ = try b.exists(Self.packPath) } == .transient, "exists throws: it never answers no")
        #expect(kind { _ = try b.list(.pack) } == .transient)
    }
}

/// Retries are a wrapper around any backend.
@Suite struct RetryingBackendTests {
    /// Fails the first `failures` calls of each operation with `kind`.
    final class Flaky: Backend, @unchecked Sendable {
        let base: MemoryBackend
        let kind: BackendError.Kind
        var failures: Int
        var silent = false
        private(set) var calls = 0
        init(failures: Int, kind: BackendError.Kind) throws {
            base = try MemoryBackend()
            self.failures = failures
            self.kind = kind
        }
        var location: String { base.location }
        private func attempt() throws(BackendError) {
            calls += 1
            if failures > 0 {
                failures -= 1
                var e = BackendError(kind, location: location, "flaky")
                e.silent = silent
                throw e
            }
        }
        func put(_ path: String, from localFile: String, size: Int) throws(BackendError) -> PutOutcome {
            try attempt(); return try base.put(path, from: localFile, size: size)
        }
        func fetch(_ path: String, limit: Int) throws(BackendError) -> FetchedObject { try attempt(); return try base.fetch(path, limit: limit) }
        func fetch(_ path: String, range: Range<Int>) throws(BackendError) -> [UInt8] { try attempt(); return try base.fetch(path, range: range) }
        func stat(_ path: String) throws(BackendError) -> StoredObject { try attempt(); return try base.stat(path) }
        func list(_ kind: ObjectKind) throws(BackendError) -> [StoredObject] { try attempt(); return try base.list(kind) }
        func inventory() throws(BackendError) -> Inventory { try attempt(); return try base.inventory() }
    }

    @Test func transientFailuresAreTriedAgain() throws {
        let dir = try TemporaryDirectory()
        let file = try dir.write("f", [1, 2, 3])
        let flaky = try Flaky(failures: 2, kind: .transient)
        let b = RetryingBackend(flaky, delays: [0, 0, 0])
        #expect(try b.put("keys/client-secret.cms", from: file, size: 3) == .stored)
        #expect(flaky.calls == 3)
    }

    @Test(arguments: [BackendError.Kind.permanent, .notFound, .alreadyExists])
    func otherFailuresAreNot(_ kind: BackendError.Kind) throws {
        let flaky = try Flaky(failures: 1, kind: kind)
        let b = RetryingBackend(flaky, delays: [0, 0, 0])
        #expect(throws: BackendError.self) { _ = try b.stat("keys/client-secret.cms") }
        #expect(flaky.calls == 1)
    }

    @Test func aSilentServerIsNotAskedAgain() throws {
        let flaky = try Flaky(failures: 1, kind: .transient)
        flaky.silent = true
        let b = RetryingBackend(flaky, delays: [0, 0, 0])
        #expect(throws: BackendError.self) { _ = try b.list(.pack) }
        #expect(flaky.calls == 1)
    }

    @Test func retriesEndAfterTheLastDelay() throws {
        let flaky = try Flaky(failures: 10, kind: .transient)
        let b = RetryingBackend(flaky, delays: [0, 0])
        #expect(throws: BackendError.self) { _ = try b.inventory() }
        #expect(flaky.calls == 3)
    }
}

final class OutcomeBox: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var values: [PutOutcome?] = []
    private(set) var errors: [String] = []
    func add(_ v: PutOutcome?) { lock.withLock { values.append(v) } }
    func fail(_ e: String) { lock.withLock { values.append(nil); errors.append(e) } }
}
