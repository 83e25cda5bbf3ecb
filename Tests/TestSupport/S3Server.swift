import Foundation

/// A real S3 implementation on a free loopback port: moto's server
/// (PyPI `moto[server]`, installed by scripts/install-deps.sh), started by
/// Tests/Fixtures/s3_server.py with versioned, Object-Lock-enabled buckets
/// and the IAM users of deploy/s3, whose policies moto enforces (requests
/// are signed and checked): `fbk-client` may only create objects,
/// `fbk-operator` read and list, `fbk-prune` also delete; `admin` anything.
public final class S3Server: @unchecked Sendable {
    public let prefix: TemporaryDirectory
    public private(set) var port = 0
    public let buckets: [String]
    private var pid: pid_t = 0

    public var endpoint: String { "http://127.0.0.1:\(port)" }
    /// The same service by name, for virtual-host addressing (`BUCKET.localhost` is loopback to libcurl).
    public var namedEndpoint: String { "http://localhost:\(port)" }
    /// The credentials file of one of the fixture's users (fbk-client, fbk-operator, fbk-prune, admin).
    public func credentials(_ user: String) -> String { prefix.file(user + ".credentials") }
    /// The moto process, for its CPU time in benchmarks.
    public var processID: pid_t { pid }

    public init(buckets: [String] = ["fbk"]) throws {
        self.buckets = buckets
        prefix = try TemporaryDirectory()
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/s3_server.py").path
        var lastError = ""
        for _ in 0..<3 {
            port = try freePort()
            try? FileManager.default.removeItem(atPath: prefix.file("ready"))
            pid = try spawnDetached("/usr/bin/env", ["python3", script, String(port), prefix.path] + buckets,
                                    environment: ProcessInfo.processInfo.environment,
                                    stdout: prefix.file("moto.out"), stderr: prefix.file("moto.err"))
            // moto and boto3 take a few seconds to import on a slow machine.
            for _ in 0..<600 where !FileManager.default.fileExists(atPath: prefix.file("ready")) && kill(pid, 0) == 0 {
                usleep(50_000)
            }
            if FileManager.default.fileExists(atPath: prefix.file("ready")) { return }
            lastError = (try? String(contentsOfFile: prefix.file("moto.err"), encoding: .utf8)) ?? "no output"
            stop()
        }
        throw FixtureError("moto_server did not start (pip install 'moto[server]', or run scripts/install-deps.sh): \(lastError.suffix(2000))")
    }

    deinit { stop() }

    nonisolated(unsafe) private static var sharedServer: S3Server?
    private static let sharedLock = NSLock()

    /// One server for a whole test run, with buckets `fbk` and `fbk2` (Object
    /// Lock) and `fbk-plain` (neither lock nor versions): each test takes a prefix of its own.
    public static func shared() throws -> S3Server {
        try sharedLock.withLock {
            if let sharedServer { return sharedServer }
            let s = try S3Server(buckets: ["fbk", "fbk2", "fbk-plain"])
            sharedServer = s
            // Statics are never deinitialised: stop it when the test process exits
            // (the fixture also exits when its parent is gone).
            atexit { S3Server.sharedServer?.stop() }
            return s
        }
    }

    public func stop() {
        guard pid > 0 else { return }
        // SIGKILL: a process spawned from a test thread may inherit a mask that blocks SIGTERM; moto keeps nothing on disk.
        kill(pid, SIGKILL)
        _ = waitForExit(pid)
        pid = 0
    }

    /// The storage root of a bucket: `s3://BUCKET/PREFIX/`.
    public func root(_ bucket: String? = nil, prefix path: String = "fleet") -> String { "s3://\(bucket ?? buckets[0])/\(path)/" }
}
