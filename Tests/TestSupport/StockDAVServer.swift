import Foundation

/// A WebDAV server as it ships, configured by nobody for fbk, on a free
/// loopback port: nginx with its dav modules and `create_full_put_path`
/// off (its default), Apache httpd with mod_dav, or `rclone serve webdav`.
/// One account (`c1`) reads and writes everything, as on such servers.
public final class StockDAVServer: @unchecked Sendable {
    public enum Kind: String, CaseIterable, Sendable, CustomStringConvertible {
        case nginx, apache, rclone
        public var description: String { rawValue }
    }

    public let kind: Kind
    public let prefix: TemporaryDirectory
    public private(set) var port = 0
    public let user = "c1"
    public let password = "stock-pw"
    private var pid: pid_t = 0
    public var storageRoot: String { prefix.file("root") }
    public var rootURL: String { "http://127.0.0.1:\(port)/" }
    public func url(_ client: String) -> String { rootURL + client + "/" }
    /// The server's request log, where it keeps one (nginx, Apache).
    public var accessLog: String { prefix.file("logs/access.log") }

    public init(_ kind: Kind) throws {
        self.kind = kind
        prefix = try TemporaryDirectory()
        for d in ["root", "body", "tmp", "logs", "lock"] {
            try FileManager.default.createDirectory(atPath: prefix.file(d), withIntermediateDirectories: true)
        }
        if kind != .rclone {
            let r = try runTool("htpasswd", ["-c", "-b", "-B", prefix.file("htpasswd"), user, password])
            guard r.status == 0 else { throw FixtureError("htpasswd failed: \(r.stderr)") }
        }
        var lastError = ""
        for _ in 0..<5 {
            port = try freePort()
            do {
                try start()
                for _ in 0..<200 where !canConnect(port) { usleep(25_000) }
                if canConnect(port) { return }
                lastError = (try? String(contentsOfFile: prefix.file("logs/error.log"), encoding: .utf8)) ?? "not listening"
            } catch {
                lastError = "\(error)"
            }
            stop()
        }
        throw FixtureError("\(kind) did not start: \(lastError)")
    }

    deinit { stop() }

    public func stop() {
        switch kind {
        case .rclone:
            if pid > 0 { kill(pid, SIGTERM); _ = waitForExit(pid); pid = 0 }
        case .nginx, .apache:
            let pidFile = prefix.file(kind == .nginx ? "nginx.pid" : "httpd.pid")
            guard let text = try? String(contentsOfFile: pidFile, encoding: .utf8), let p = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)) else { return }
            kill(p, SIGTERM)
            for _ in 0..<100 where kill(p, 0) == 0 { usleep(20_000) }
            try? FileManager.default.removeItem(atPath: pidFile)
        }
    }

    private func start() throws {
        let p = prefix.path
        switch kind {
        case .nginx:
            let config = """
                \(nginxPrelude(p))
                    server {
                        listen 127.0.0.1:\(port);
                        root \(p)/root;
                        client_max_body_size 0;
                        auth_basic "dav";
                        auth_basic_user_file \(p)/htpasswd;
                        location / {
                            dav_methods PUT DELETE MKCOL COPY MOVE;
                            dav_ext_methods PROPFIND OPTIONS;
                            dav_access user:rw group:r;
                        }
                    }
                }
                """
            try Data(config.utf8).write(to: URL(fileURLWithPath: prefix.file("nginx.conf")))
            let r = try runTool("nginx", ["-p", p, "-e", prefix.file("logs/error.log"), "-c", prefix.file("nginx.conf")])
            guard r.status == 0 else { throw FixtureError("nginx: \(r.stderr)") }
        case .apache:
            let modules = "/usr/lib/apache2/modules"
            let asRoot = geteuid() == 0
            if asRoot {
                // Apache will not serve as root: its workers run as nobody, who must own the storage.
                for d in ["root", "lock", "logs"] { _ = try runTool("chown", ["-R", "nobody:nogroup", prefix.file(d)]) }
                _ = try runTool("chmod", ["755", p])
            }
            let config = """
                ServerRoot \(p)
                ServerName 127.0.0.1
                Listen 127.0.0.1:\(port)
                PidFile \(p)/httpd.pid
                ErrorLog \(p)/logs/error.log
                LogFormat "%m %U %>s" plain
                CustomLog \(p)/logs/access.log plain
                \(asRoot ? "User nobody\nGroup nogroup" : "")
                LoadModule mpm_event_module \(modules)/mod_mpm_event.so
                LoadModule authn_core_module \(modules)/mod_authn_core.so
                LoadModule authz_core_module \(modules)/mod_authz_core.so
                LoadModule authn_file_module \(modules)/mod_authn_file.so
                LoadModule authz_user_module \(modules)/mod_authz_user.so
                LoadModule auth_basic_module \(modules)/mod_auth_basic.so
                LoadModule dav_module \(modules)/mod_dav.so
                LoadModule dav_fs_module \(modules)/mod_dav_fs.so
                DavLockDB \(p)/lock/DavLock
                DocumentRoot \(p)/root
                <Directory \(p)/root>
                    Dav On
                    AuthType Basic
                    AuthName dav
                    AuthUserFile \(p)/htpasswd
                    Require valid-user
                </Directory>
                """
            try Data(config.utf8).write(to: URL(fileURLWithPath: prefix.file("httpd.conf")))
            let r = try runTool("/usr/sbin/apache2", ["-f", prefix.file("httpd.conf"), "-k", "start"])
            guard r.status == 0 else { throw FixtureError("apache2: \(r.stdout) \(r.stderr)") }
        case .rclone:
            pid = try spawnDetached("/usr/bin/rclone", ["serve", "webdav", storageRoot, "--addr", "127.0.0.1:\(port)",
                                                        "--user", user, "--pass", password, "--config", prefix.file("rclone.conf")],
                                    environment: ["HOME": p], stdout: prefix.file("logs/rclone.out"), stderr: prefix.file("logs/error.log"))
        }
    }

    /// The paths of the requests of `method` the server logged (nginx, Apache), in order.
    public func requests(_ method: String) -> [String] {
        ((try? String(contentsOfFile: accessLog, encoding: .utf8)) ?? "").split(separator: "\n").compactMap { line in
            guard let r = line.range(of: kind == .nginx ? "\"\(method) " : "\(method) "), kind == .nginx || line.hasPrefix(method + " ") else { return nil }
            return line[r.upperBound...].split(separator: " ").first.map(String.init)
        }
    }
}
