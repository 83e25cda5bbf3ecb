// Shared by the test targets: running tools, temporary directories, and
// the nginx mirror fixture.

import Foundation

/// Runs a command-line tool (openssl, zstd, curl, htpasswd…) found on PATH.
@discardableResult
public func runTool(_ tool: String, _ arguments: [String], stdin: [UInt8]? = nil,
                    environment: [String: String] = [:]) throws -> (status: Int32, stdout: [UInt8], stderr: String) {
    let dir = try TemporaryDirectory()
    var env = ProcessInfo.processInfo.environment
    for (k, v) in environment { env[k] = v }
    var input: String? = nil
    if let stdin { input = try dir.write("stdin", stdin) }
    let status = try spawnAndWait(tool, arguments, environment: env, stdin: input,
                                  stdout: dir.file("out"), stderr: dir.file("err"))
    return (status,
            [UInt8](FileManager.default.contents(atPath: dir.file("out")) ?? Data()),
            String(decoding: FileManager.default.contents(atPath: dir.file("err")) ?? Data(), as: UTF8.self))
}

/// `runTool` on a thread of its own, for a tool that runs for minutes (the
/// package test): a test blocked in waitpid holds one of Swift Testing's
/// pool threads, as many as the machine has cores, and on two cores that
/// starves the tests running beside it past their time limits.
public func runToolOffPool(_ tool: String, _ arguments: [String],
                           environment: [String: String] = [:]) async throws -> (status: Int32, stdout: [UInt8], stderr: String) {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread {
            continuation.resume(with: Result { try runTool(tool, arguments, environment: environment) })
        }
        thread.start()
    }
}

/// A temporary directory removed when the value goes away.
public final class TemporaryDirectory: @unchecked Sendable {
    public let path: String

    public init() throws {
        var template = Array((NSTemporaryDirectory() + "/fbk-test-XXXXXX").utf8CString)
        guard let p = mkdtemp(&template) else { throw CocoaError(.fileWriteUnknown) }
        path = (String(cString: p) as NSString).standardizingPath
    }

    public func file(_ name: String) -> String { path + "/" + name }

    @discardableResult
    public func write(_ name: String, _ bytes: [UInt8]) throws -> String {
        let p = file(name)
        try FileManager.default.createDirectory(atPath: (p as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try Data(bytes).write(to: URL(fileURLWithPath: p))
        return p
    }

    public func read(_ name: String) -> [UInt8]? { FileManager.default.contents(atPath: file(name)).map { [UInt8]($0) } }

    deinit {
        // FileManager cannot remove trees deeper than PATH_MAX; rm can.
        if (try? FileManager.default.removeItem(atPath: path)) == nil {
            _ = try? spawnAndWait("rm", ["-rf", path], environment: ProcessInfo.processInfo.environment,
                                  stdin: nil, stdout: "/dev/null", stderr: "/dev/null")
        }
    }
}

/// The repository's root folder (for deploy/ files).
public let repositoryRoot: String = {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { url.deleteLastPathComponent() }
    return url.path
}()

/// The start of an nginx configuration in its own prefix `p` (pid, logs,
/// temporary paths, the dav_ext module), up to and including `http {`:
/// the servers and the closing brace follow.
func nginxPrelude(_ p: String) -> String {
    """
    load_module /usr/lib/nginx/modules/ngx_http_dav_ext_module.so;
    \(geteuid() == 0 ? "user root;" : "")
    worker_processes 1;
    pid \(p)/nginx.pid;
    error_log \(p)/logs/error.log info;
    events { worker_connections 64; }
    http {
        access_log \(p)/logs/access.log;
        client_body_temp_path \(p)/body;
        proxy_temp_path \(p)/tmp; fastcgi_temp_path \(p)/tmp; uwsgi_temp_path \(p)/tmp; scgi_temp_path \(p)/tmp;
    """
}

/// A real nginx with the project's WebDAV rules (deploy/nginx/fbk-dav.conf,
/// included verbatim) on a free loopback port, in its own temp prefix.
public final class NginxMirror: @unchecked Sendable {
    public let prefix: TemporaryDirectory
    public private(set) var port: Int = 0
    /// The operator's read-only port (deploy/nginx/fbk-operator.conf); account operator / operator-pw.
    public private(set) var operatorPort: Int = 0
    public var operatorURL: String { "http://127.0.0.1:\(operatorPort)/" }
    /// The prune port (deploy/nginx/fbk-prune.conf); the same operator account.
    public private(set) var prunePort: Int = 0
    public var pruneURL: String { "http://127.0.0.1:\(prunePort)/" }
    public var storageRoot: String { prefix.file("root") }
    public let users: [String: String]

    /// - Parameter users: client name → password, written with htpasswd -B.
    public init(users: [String: String]) throws {
        prefix = try TemporaryDirectory()
        self.users = users
        for d in ["root", "body", "tmp", "logs"] {
            try FileManager.default.createDirectory(atPath: prefix.file(d), withIntermediateDirectories: true)
        }
        var first = true
        for (user, password) in users.sorted(by: { $0.key < $1.key }) {
            let r = try runTool("htpasswd", (first ? ["-c"] : []) + ["-b", "-B", prefix.file("htpasswd"), user, password])
            guard r.status == 0 else { throw FixtureError("htpasswd failed: \(r.stderr)") }
            first = false
        }
        let r = try runTool("htpasswd", ["-c", "-b", "-B", prefix.file("operators"), "operator", "operator-pw"])
        guard r.status == 0 else { throw FixtureError("htpasswd failed: \(r.stderr)") }
        try start()
    }

    /// Starts nginx (again, after `stop`) on the same port if it is still free.
    public func start() throws {
        var lastError = ""
        for _ in 0..<5 {
            if port == 0 { port = try freePort() }
            if operatorPort == 0 { operatorPort = try freePort() }
            if prunePort == 0 { prunePort = try freePort() }
            try writeConfig()
            let r = try runTool("nginx", ["-p", prefix.path, "-e", prefix.file("logs/error.log"), "-c", prefix.file("nginx.conf")])
            if r.status == 0 {
                try watchParent()
                try waitUntilListening()
                return
            }
            lastError = r.stderr
            port = 0
            operatorPort = 0
            prunePort = 0
        }
        throw FixtureError("nginx did not start: \(lastError)")
    }

    public func stop() {
        guard let pid = try? String(contentsOfFile: prefix.file("nginx.pid"), encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines), let p = Int32(pid) else { return }
        kill(p, SIGTERM)
        for _ in 0..<100 where kill(p, 0) == 0 { usleep(20_000) }
        try? FileManager.default.removeItem(atPath: prefix.file("nginx.pid"))
    }

    deinit { stop() }

    /// The URL of a client's directory.
    public func url(_ client: String) -> String { "http://127.0.0.1:\(port)/\(client)/" }

    /// The same over IPv6 loopback, as an IPv6 literal (when available).
    public func ipv6URL(_ client: String) -> String { "http://[::1]:\(port)/\(client)/" }

    private func writeConfig() throws {
        let p = prefix.path
        let config = """
            \(nginxPrelude(p))
                server {
                    listen 127.0.0.1:\(port);
                    \(ipv6LoopbackAvailable ? "listen [::1]:\(port);" : "")
                    root \(p)/root;
                    auth_basic_user_file \(p)/htpasswd;
                    include \(repositoryRoot)/deploy/nginx/fbk-dav.conf;
                }
                server {
                    listen 127.0.0.1:\(operatorPort);
                    root \(p)/root;
                    auth_basic_user_file \(p)/operators;
                    include \(repositoryRoot)/deploy/nginx/fbk-operator.conf;
                }
                server {
                    listen 127.0.0.1:\(prunePort);
                    root \(p)/root;
                    auth_basic_user_file \(p)/operators;
                    include \(repositoryRoot)/deploy/nginx/fbk-prune.conf;
                }
            }
            """
        try Data(config.utf8).write(to: URL(fileURLWithPath: prefix.file("nginx.conf")))
    }

    /// nginx daemonizes, so it outlives a test process that crashes, times
    /// out, or holds the fixture in a static: a watchdog stops it once the
    /// test process is gone (and quits by itself once `stop` removed the
    /// pid file, so it never signals a reused PID).
    private func watchParent() throws {
        let pidFile = prefix.file("nginx.pid")
        let script = """
            while kill -0 \(getpid()) 2>/dev/null && [ -f '\(pidFile)' ]; do sleep 1; done
            [ -f '\(pidFile)' ] && kill "$(cat '\(pidFile)')" 2>/dev/null
            exit 0
            """
        _ = try spawnDetached("/bin/sh", ["-c", script], environment: [:], stdout: "/dev/null", stderr: "/dev/null")
    }

    private func waitUntilListening() throws {
        for _ in 0..<100 {
            if canConnect(port) { return }
            usleep(20_000)
        }
        throw FixtureError("nginx is not listening on 127.0.0.1:\(port)")
    }
}

/// Whether this machine has the IPv6 loopback address.
public let ipv6LoopbackAvailable: Bool = {
    let text = (try? String(contentsOfFile: "/proc/net/if_inet6", encoding: .utf8)) ?? ""
    return text.contains("00000000000000000000000000000001")
}()

public struct FixtureError: Error, CustomStringConvertible {
    public let description: String
    public init(_ d: String) { description = d }
}

/// A port on 127.0.0.1 that was free a moment ago.
public func freePort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    addr.sin_port = 0
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    let ok = withUnsafeMutablePointer(to: &addr) { p in
        p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
    }
    guard ok else { throw FixtureError("cannot find a free port") }
    return Int(UInt16(bigEndian: addr.sin_port))
}

func canConnect(_ port: Int) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    addr.sin_port = UInt16(port).bigEndian
    return withUnsafePointer(to: &addr) { p in
        p.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
    }
}

/// Sets a file's access and modification times to `daysAgo` days before now.
public func setModificationTime(_ path: String, daysAgo: Double) {
    let t = Int(Date().addingTimeInterval(-daysAgo * 86_400).timeIntervalSince1970)
    var times = [timespec(tv_sec: t, tv_nsec: 0), timespec(tv_sec: t, tv_nsec: 0)]
    utimensat(AT_FDCWD, path, &times, 0)
}

/// Runs `systemd-analyze verify` on units from deploy/systemd, with the
/// built fbk binary in place of /usr/local/bin/fbk.
public func verifySystemdUnits(_ names: [String], binary: String) throws -> (status: Int32, stderr: String) {
    let dir = try TemporaryDirectory()
    for unit in names {
        var text = try String(contentsOfFile: repositoryRoot + "/deploy/systemd/" + unit, encoding: .utf8)
        text = text.replacingOccurrences(of: "/usr/local/bin/fbk", with: binary)
        try dir.write(unit, Array(text.utf8))
    }
    // --man=no: the Documentation= pages come with the package, whose test
    // verifies the installed units with them.
    let r = try runTool("systemd-analyze", ["verify", "--man=no"] + names.map { dir.file($0) })
    return (r.status, r.stderr)
}

/// Deterministic bytes; `compressible` gives text-like data.
public func sampleBytes(_ count: Int, seed: UInt64 = 1, compressible: Bool = false) -> [UInt8] {
    var s = seed | 1
    var out = [UInt8](repeating: 0, count: count)
    for i in 0..<count {
        s ^= s >> 12; s ^= s << 25; s ^= s >> 27
        let r = s &* 0x2545_F491_4F6C_DD1D
        out[i] = compressible ? UInt8(ascii: "a") + UInt8(r >> 61) : UInt8(truncatingIfNeeded: r >> 32)
    }
    return out
}
