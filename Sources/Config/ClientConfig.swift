// The client configuration file: YAML, parsed by libyaml (YAML.swift), documented field by
// field in README.md. Unknown or malformed fields are errors naming the line.

import Chunker
import FoundationEssentials
import Glibc
import Seal
import Backend
import Platform

/// One mirror as configured.
public struct MirrorConfig: Equatable, Sendable {
    /// The client's own directory on the mirror: http(s)://…/CLIENT/ or file:///…/CLIENT/.
    public var url: String
    /// WebDAV user (default: the client name).
    public var user: String?
    /// File holding the WebDAV password (mode 0600).
    public var passwordFile: String?
    /// For an `s3://BUCKET/PREFIX/CLIENT/` mirror: endpoint, region, credentials, Object Lock.
    public var s3: S3Settings?

    public init(url: String, user: String? = nil, passwordFile: String? = nil, s3: S3Settings? = nil) {
        self.url = url
        self.user = user
        self.passwordFile = passwordFile
        self.s3 = s3
    }
}

/// Commands run around a snapshot (README, "Hooks"): `before` (stop a
/// service, make an LVM or ZFS snapshot, dump a database), `after`
/// (always, once `before` was started), `on_failure` (when the run's exit
/// status is not 0). Each is a shell command line (`/bin/sh -c`).
public struct Hooks: Equatable, Sendable {
    public var before: [String] = []
    public var after: [String] = []
    public var onFailure: [String] = []
    /// Seconds a hook may run before it is stopped (SIGTERM, then SIGKILL).
    public var timeout = 600
    /// Take the snapshot even if a `before` hook fails.
    public var continueIfBeforeFails = false
    public init() {}
}

/// A command whose standard output is backed up as a file
/// (`/.fbk-commands/NAME` in the snapshot), never written to local disk:
/// a database dump (README, "Command sources").
public struct CommandSource: Equatable, Sendable {
    public var name: String
    public var run: String
    /// Run as this user (through runuser: fbk must run as root).
    public var user: String?
    /// Seconds it may run before it is stopped and counted failed.
    public var timeout = 6 * 3600
    public init(name: String, run: String, user: String? = nil) { (self.name, self.run, self.user) = (name, run, user) }

    /// A name fbk stores under: letters, digits, `.`, `_`, `-`, not starting with `.`.
    public static func isValidName(_ name: String) -> Bool {
        name.utf8.count <= 255 && ClientConfig.isValidClientName(name)
    }
}

/// Everything `fbk snapshot` needs to know.
public struct ClientConfig: Equatable, Sendable {
    /// A client name: a letter or digit, then letters, digits, `.`, `_`
    /// and `-` (it names a directory on every mirror).
    /// What is wrong with an http(s) mirror URL's host and port, if anything
    /// (`http://[::1]8084/pi/` lacks the colon before its port).
    public static func urlProblem(_ url: String) -> String? {
        guard url.hasPrefix("http") else { return nil }
        guard let c = URLComponents(string: url), let host = c.host, !host.isEmpty else {
            return "is not a valid URL: write it as http://HOST:PORT/CLIENT/ (an IPv6 address in brackets: http://[2001:db8::1]:8084/CLIENT/)"
        }
        if let port = c.port, !(1...65535).contains(port) { return "has no valid port (1-65535)" }
        return nil
    }

    /// The S3 settings of one `s3://` mirror from its fields.
    package static func s3Settings(url: String, fields f: [String: String], reuseHorizon: Int,
                           fail: (String) -> StoreError) throws(StoreError) -> S3Settings {
        do {
            _ = try S3Location(url)
        } catch {
            throw fail(error.message)
        }
        guard url.split(separator: "/").count >= 3 else { throw fail("mirror '\(url)' must name the client's directory: s3://BUCKET/PREFIX/CLIENT/") }
        return try s3Settings(fields: f, reuseHorizon: reuseHorizon, what: "mirror '\(url)'", fail: fail)
    }

    /// S3 settings from their fields (a mirror's in fbk.conf, or an operator command's --s3-* options).
    package static func s3Settings(fields f: [String: String], reuseHorizon: Int, what url: String,
                                   fail: (String) -> StoreError) throws(StoreError) -> S3Settings {
        guard let endpoint = f["endpoint"], let credentials = f["credentials_file"] else {
            throw fail("\(url) needs endpoint (e.g. https://s3.eu-central-1.amazonaws.com) and credentials_file")
        }
        var settings = S3Settings(endpoint: endpoint, region: f["region"] ?? "us-east-1", credentialsFile: credentials)
        if let problem = settings.endpointProblem { throw fail("\(url): \(problem)") }
        switch f["addressing"] ?? "path" {
        case "path": settings.virtualHost = false
        case "virtual": settings.virtualHost = true
        case let other: throw fail("\(url): addressing must be path or virtual, not '\(other)'")
        }
        let minimum = (reuseHorizon + 86_399) / 86_400
        switch (f["object_lock"] ?? "none").lowercased() {
        case "none":
            guard f["object_lock_days"] == nil else { throw fail("\(url): object_lock_days without object_lock (compliance or governance)") }
        case let mode:
            guard let m = S3Settings.ObjectLock.Mode(rawValue: mode.uppercased()) else {
                throw fail("\(url): object_lock must be compliance, governance or none, not '\(mode)'")
            }
            let days = try f["object_lock_days"].map { (text: String) throws(StoreError) -> Int in
                guard let d = Int(text), (minimum...36_500).contains(d) else {
                    throw fail("\(url): object_lock_days must be a whole number of days from the reuse horizon (\(minimum)) to 36500: packs a run may reuse must stay locked")
                }
                return d
            } ?? minimum + 7
            settings.objectLock = .init(mode: m, days: days)
        }
        return settings
    }

    public static func isValidClientName(_ name: String) -> Bool {
        func allowed(_ c: UInt8, first: Bool) -> Bool {
            (c >= 0x30 && c <= 0x39) || (c | 0x20 >= 0x61 && c | 0x20 <= 0x7a) || (!first && (c == 0x2e || c == 0x5f || c == 0x2d))
        }
        return !name.isEmpty && name.utf8.enumerated().allSatisfy { allowed($0.element, first: $0.offset == 0) }
    }

    public static let defaultPath = "/etc/fbk/fbk.conf"
    /// The largest configuration or exclude_from file read (a file of
    /// thousands of lines is far below it; anything larger is a mistake).
    public static let maximumFileSize = 1 << 20

    public var client: String
    public var host: String?
    public var recipients: [String]
    public var secret: String
    public var state: String
    public var mirrors: [MirrorConfig]
    public var requiredMirrors = 1
    public var paths: [String]
    public var excludes: [String] = []
    /// Files of more exclude patterns, one a line (`#` comments and blank lines skipped).
    public var excludeFrom: [String] = []
    /// Leave out the contents of directories holding a valid CACHEDIR.TAG (bford.info/cachedir).
    public var excludeCaches = false
    /// Leave out the contents of directories holding an entry of one of these names (`.nobackup`).
    public var excludeIfPresent: [String] = []
    /// Leave out regular files larger than this many bytes.
    public var excludeLargerThan: Int?
    public var hooks = Hooks()
    /// Bytes per second all uploads of a run share, every mirror together (nil: no limit).
    public var uploadLimit: Int?
    public var commands: [CommandSource] = []
    public var oneFilesystem = true
    public var compressionLevel: Int32 = defaultCompressionLevel
    public var packSize = 16 << 20
    /// Chunk data allowed between reading and sealing (the pipeline's
    /// memory; the largest chunk always fits).
    public var pipelineMemory = 6 << 20
    /// Compression threads; 0 means one per online core.
    public var workers = 0
    public var spoolLimit = 4 << 30
    public var chunker = ChunkerParameters.default
    public var logInterval = 60
    public var connectTimeout = 10
    /// A transfer slower than 1 KiB/s for this many seconds is abandoned.
    public var stallTimeout = 30
    public var retryDelays: [Double] = [1, 2, 4]
    /// Deduplicate only against packs a snapshot of this client needed
    /// within this many seconds (FORMAT.md, "Retention"): older ones are
    /// uploaded again, so the servers may prune what no recent snapshot needs.
    public var reuseHorizon = ClientConfig.defaultReuseHorizon
    public static let defaultReuseHorizon = 14 * 86_400
    /// A pack whose live share (of what it held) falls below this is no
    /// longer reused: its live chunks are stored again, so its dead bytes
    /// become removable by prune. 0 turns it off.
    public var renewBelow = 0.3
    /// The most plain bytes one weekly renewal of partly dead packs
    /// marks to be stored again.
    public var renewalBudget = 256 << 20

    /// The shortest and longest reuse horizons accepted.
    public static let reuseHorizonRange = 86_400...(400 * 86_400)

    public init(client: String, recipients: [String], secret: String, state: String,
                mirrors: [MirrorConfig], paths: [String]) {
        self.client = client
        self.recipients = recipients
        self.secret = secret
        self.state = state
        self.mirrors = mirrors
        self.paths = paths
    }

    public var indexPath: String { state + "/index.sqlite" }
    public var spoolDirectory: String { state + "/spool" }

    public var mirrorOptions: MirrorOptions {
        var o = MirrorOptions()
        o.connectTimeout = connectTimeout
        o.lowSpeedTime = stallTimeout
        o.retryDelays = retryDelays
        return o
    }

    // MARK: Reading

    /// Reads and checks a configuration file.
    /// - Throws: `StoreError.config` with `FILE:LINE: …` for the first problem found.
    public static func load(path: String) throws(StoreError) -> ClientConfig {
        let data = try readOperatorFile(path, limit: maximumFileSize, what: "configuration",
            advice: "give --config with the file fbk init or fbk enroll wrote (installed as \(defaultPath)), or write one with fbk init --config \(path) (see fbk init --help)")
        return try parse(String(decoding: data, as: UTF8.self), file: path)
    }

    public static func parse(_ text: String, file: String) throws(StoreError) -> ClientConfig {
        let fail = YAMLFile.failure(file)
        let (root, mapping) = try YAMLFile.mapping(text, file: file, what: "the configuration must be a mapping of fields")

        var fields: [String: Node] = [:]
        for (k, v) in mapping {
            guard let key = k.string else { throw fail(k, "field names must be text") }
            guard known.contains(key) else {
                throw fail(k, "unknown field '\(key)' (known: \(known.sorted().joined(separator: ", ")))")
            }
            guard fields[key] == nil else { throw fail(k, "field '\(key)' is given twice") }
            fields[key] = v
        }
        func string(_ key: String, required: Bool = true) throws(StoreError) -> String? {
            guard let n = fields[key] else {
                if required { throw fail(root, "missing field '\(key)'") }
                return nil
            }
            guard case .scalar(let s) = n, !s.string.isEmpty else { throw fail(n, "field '\(key)' must be text") }
            return s.string
        }
        func strings(_ key: String, required: Bool) throws(StoreError) -> [String] {
            guard let n = fields[key] else {
                if required { throw fail(root, "missing field '\(key)'") }
                return []
            }
            guard case .sequence(let seq) = n else { throw fail(n, "field '\(key)' must be a list") }
            var out: [String] = []
            for item in seq {
                guard case .scalar(let s) = item, !s.string.isEmpty else { throw fail(item, "'\(key)' entries must be text") }
                out.append(s.string)
            }
            return out
        }
        func integer(_ key: String) throws(StoreError) -> Int? {
            guard let n = fields[key] else { return nil }
            guard case .scalar(let s) = n, let v = parseSize(s.string) else {
                throw fail(n, "field '\(key)' must be a whole number (sizes may end in KiB, MiB or GiB)")
            }
            return v
        }

        let client = try string("client")!
        guard ClientConfig.isValidClientName(client) else {
            throw fail(fields["client"], "client name '\(client)' may contain only letters, digits, '.', '_' and '-'")
        }
        var mirrors: [MirrorConfig] = []
        guard let mirrorNode = fields["mirrors"] else { throw fail(root, "missing field 'mirrors'") }
        guard case .sequence(let mirrorSeq) = mirrorNode, !mirrorSeq.isEmpty else {
            throw fail(mirrorNode, "field 'mirrors' must be a non-empty list")
        }
        var s3Fields: [(node: Node, fields: [String: String])] = []
        for m in mirrorSeq {
            var entry = MirrorConfig(url: "")
            var s3: [String: String] = [:]
            switch m {
            case .scalar(let s):
                entry.url = s.string
            case .mapping(let mm):
                for (k, v) in mm {
                    guard let key = k.string, case .scalar(let value) = v else { throw fail(k, "mirror fields must be text") }
                    switch key {
                    case "url": entry.url = value.string
                    case "user": entry.user = value.string
                    case "password_file": entry.passwordFile = value.string
                    case "endpoint", "region", "credentials_file", "addressing", "object_lock", "object_lock_days": s3[key] = value.string
                    default: throw fail(k, "unknown mirror field '\(key)' (known: url, user, password_file; for s3:// also endpoint, region, credentials_file, addressing, object_lock, object_lock_days)")
                    }
                }
            default:
                throw fail(m, "a mirror is a URL or a mapping with url, user, password_file")
            }
            guard ["http://", "https://", "file:///", "s3://"].contains(where: { entry.url.hasPrefix($0) }) else {
                throw fail(m, "mirror URL '\(entry.url)' must start with http://, https://, s3:// or file:///")
            }
            if let problem = Self.urlProblem(entry.url) { throw fail(m, "mirror URL '\(entry.url)' \(problem)") }
            guard entry.url.hasPrefix("s3://") || s3.isEmpty else {
                throw fail(m, "mirror '\(entry.url)': \(s3.keys.sorted().joined(separator: ", ")) belong to s3:// mirrors only")
            }
            if entry.url.hasPrefix("s3://") { s3Fields.append((m, s3)) }
            mirrors.append(entry)
        }

        var config = ClientConfig(
            client: client, recipients: try strings("recipients", required: true), secret: try string("secret")!,
            state: try string("state")!, mirrors: mirrors, paths: try strings("paths", required: true))
        guard !config.recipients.isEmpty else {
            throw fail(fields["recipients"], "no recipient certificate: fbk never stores anything unencrypted")
        }
        guard !config.paths.isEmpty, config.paths.allSatisfy({ $0.hasPrefix("/") }) else {
            throw fail(fields["paths"], "'paths' must list absolute paths")
        }
        config.host = try string("host", required: false)
        config.excludes = try strings("excludes", required: false)
        config.excludeFrom = try strings("exclude_from", required: false)
        guard config.excludeFrom.allSatisfy({ $0.hasPrefix("/") }) else {
            throw fail(fields["exclude_from"], "exclude_from must list absolute paths of pattern files")
        }
        config.excludeIfPresent = try strings("exclude_if_present", required: false)
        guard config.excludeIfPresent.allSatisfy({ !$0.contains("/") && $0 != "." && $0 != ".." }) else {
            throw fail(fields["exclude_if_present"], "exclude_if_present lists names (like .nobackup), not paths")
        }
        if let n = fields["exclude_caches"] {
            guard case .scalar(let s) = n, let b = Bool(s.string) else { throw fail(n, "field 'exclude_caches' must be true or false") }
            config.excludeCaches = b
        }
        // A hook is one command line, or a list of them.
        func commandLines(_ key: String) throws(StoreError) -> [String] {
            if let n = fields[key], case .scalar(let one) = n {
                guard !one.string.isEmpty else { throw fail(n, "field '\(key)' must be a command line or a list of them") }
                return [one.string]
            }
            return try strings(key, required: false)
        }
        if let n = fields["commands"] {
            guard case .sequence(let seq) = n else { throw fail(n, "field 'commands' must be a list of {name, run, user, timeout}") }
            for item in seq {
                guard case .mapping(let m) = item else { throw fail(item, "a command is a mapping with name, run and optionally user and timeout") }
                var name: String?, run: String?, user: String?, timeout: Int?
                for (k, v) in m {
                    guard let key = k.string, case .scalar(let value) = v, !value.string.isEmpty else { throw fail(k, "command fields must be text") }
                    switch key {
                    case "name": name = value.string
                    case "run": run = value.string
                    case "user": user = value.string
                    case "timeout":
                        guard let d = CheckConfig.parseDuration(value.string), d >= 1 else { throw fail(v, "a command's timeout must be a duration like 6h") }
                        timeout = Int(d)
                    default: throw fail(k, "unknown command field '\(key)' (known: name, run, user, timeout)")
                    }
                }
                guard let name, let run else { throw fail(item, "a command needs name and run") }
                guard CommandSource.isValidName(name) else {
                    throw fail(item, "command name '\(name)' may contain only letters, digits, '.', '_' and '-', starting with a letter or digit")
                }
                guard !config.commands.contains(where: { $0.name == name }) else { throw fail(item, "command name '\(name)' is given twice") }
                var c = CommandSource(name: name, run: run, user: user)
                if let timeout { c.timeout = timeout }
                config.commands.append(c)
            }
        }
        config.hooks.before = try commandLines("before")
        config.hooks.after = try commandLines("after")
        config.hooks.onFailure = try commandLines("on_failure")
        if let n = fields["hook_timeout"] {
            guard case .scalar(let s) = n, let d = CheckConfig.parseDuration(s.string), d >= 1, d <= 86_400 else {
                throw fail(n, "hook_timeout must be a duration like 10m, between 1s and 1d")
            }
            config.hooks.timeout = Int(d)
        }
        if let n = fields["before_failure"] {
            guard case .scalar(let s) = n, ["stop", "continue"].contains(s.string) else {
                throw fail(n, "before_failure must be stop (no snapshot when a before hook fails) or continue")
            }
            config.hooks.continueIfBeforeFails = s.string == "continue"
        }
        if let v = try integer("upload_limit") {
            guard v >= 16 << 10 else { throw fail(fields["upload_limit"], "upload_limit must be at least 16KiB (bytes per second, all mirrors together), like 2MiB") }
            config.uploadLimit = v
        }
        if let v = try integer("exclude_larger_than") {
            guard v > 0 else { throw fail(fields["exclude_larger_than"], "exclude_larger_than must be a size above 0, like 2GiB") }
            config.excludeLargerThan = v
        }
        if let n = fields["one_filesystem"] {
            guard case .scalar(let s) = n, let b = Bool(s.string) else { throw fail(n, "field 'one_filesystem' must be true or false") }
            config.oneFilesystem = b
        }
        if let v = try integer("required_mirrors") {
            guard v >= 1 && v <= mirrors.count else {
                throw fail(fields["required_mirrors"], "required_mirrors must be between 1 and the number of mirrors (\(mirrors.count))")
            }
            config.requiredMirrors = v
        }
        if let v = try integer("compression_level") {
            guard compressionLevels.contains(Int32(v)) else {
                throw fail(fields["compression_level"], "compression_level must be in \(compressionLevels)")
            }
            config.compressionLevel = Int32(v)
        }
        if let v = try integer("pack_size") {
            guard v >= 1 << 20 && v <= 512 << 20 else { throw fail(fields["pack_size"], "pack_size must be between 1 MiB and 512 MiB") }
            config.packSize = v
        }
        if let v = try integer("pipeline_memory") {
            guard v >= 1 << 20 && v <= 1 << 30 else { throw fail(fields["pipeline_memory"], "pipeline_memory must be between 1 MiB and 1 GiB") }
            config.pipelineMemory = v
        }
        if let v = try integer("workers") {
            guard v >= 0 && v <= 64 else { throw fail(fields["workers"], "workers must be between 0 (one per core) and 64") }
            config.workers = v
        }
        if let v = try integer("spool_limit") { config.spoolLimit = v }
        if let v = try integer("log_interval") { config.logInterval = max(1, v) }
        if let v = try integer("connect_timeout") { config.connectTimeout = max(1, v) }
        if let v = try integer("stall_timeout") { config.stallTimeout = max(1, v) }
        if let n = fields["reuse_horizon"] {
            guard case .scalar(let s) = n, let d = CheckConfig.parseDuration(s.string), Self.reuseHorizonRange.contains(Int(d)) else {
                throw fail(n, "reuse_horizon must be a duration like 14d, between 1d and 400d (the servers' prune keep_within must be at least this plus the longest spool delay)")
            }
            config.reuseHorizon = Int(d)
        }
        // S3 settings last: an Object Lock may not be shorter than the reuse horizon.
        var s3Index = 0
        for i in config.mirrors.indices where config.mirrors[i].url.hasPrefix("s3://") {
            let (node, f) = s3Fields[s3Index]
            s3Index += 1
            config.mirrors[i].s3 = try Self.s3Settings(url: config.mirrors[i].url, fields: f, reuseHorizon: config.reuseHorizon) { fail(node, $0) }
        }
        if let n = fields["renew_below"] {
            guard case .scalar(let s) = n, let v = Double(s.string), (0...0.9).contains(v) else {
                throw fail(n, "renew_below must be a share between 0 (off) and 0.9, like 0.3")
            }
            config.renewBelow = v
        }
        if let v = try integer("renewal_budget") {
            guard v >= 0 else { throw fail(fields["renewal_budget"], "renewal_budget must be 0 or more bytes") }
            config.renewalBudget = v
        }
        if let n = fields["retry_delays"] {
            guard case .sequence(let seq) = n else { throw fail(n, "retry_delays must be a list of seconds") }
            var delays: [Double] = []
            for item in seq {
                guard case .scalar(let s) = item, let d = Double(s.string), d >= 0, d <= 600 else {
                    throw fail(item, "retry_delays entries must be seconds between 0 and 600")
                }
                delays.append(d)
            }
            config.retryDelays = delays
        }
        if let n = fields["chunker"] {
            guard case .mapping(let cm) = n else { throw fail(n, "chunker must be a mapping of min, avg, max, window") }
            var p = ChunkerParameters.default
            for (k, v) in cm {
                guard let key = k.string, case .scalar(let s) = v, let value = parseSize(s.string) else {
                    throw fail(k, "chunker fields must be sizes")
                }
                switch key {
                case "min": p.minimumSize = value
                case "avg": p.averageSize = value
                case "max": p.maximumSize = value
                case "window": p.windowSize = value
                default: throw fail(k, "unknown chunker field '\(key)' (known: min, avg, max, window)")
                }
            }
            do { try p.validate() } catch { throw fail(n, error.description) }
            config.chunker = p
        }
        return config
    }

    /// Every exclude pattern: `excludes` and the lines of the `exclude_from`
    /// files (read now: a file that cannot be read stops the run, since
    /// going on would back up what the operator meant to leave out).
    public func excludePatterns() throws(StoreError) -> [String] {
        var out = excludes
        for file in excludeFrom {
            let data = try readOperatorFile(file, limit: Self.maximumFileSize, what: "exclude_from file",
                                            advice: "fix or remove it in the configuration")
            for raw in String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline) {
                let line = raw.trimmingWhitespace()
                if line.isEmpty || line.hasPrefix("#") { continue }
                out.append(line)
            }
        }
        return out
    }

    static let known: Set<String> = [
        "client", "host", "recipients", "secret", "state", "mirrors", "required_mirrors", "paths", "excludes",
        "exclude_from", "exclude_caches", "exclude_if_present", "exclude_larger_than",
        "before", "after", "on_failure", "hook_timeout", "before_failure", "commands", "upload_limit",
        "one_filesystem", "compression_level", "pack_size", "pipeline_memory", "workers", "spool_limit", "chunker", "log_interval",
        "connect_timeout", "stall_timeout", "retry_delays", "reuse_horizon", "renew_below", "renewal_budget",
    ]

    /// "16777216", "16MiB", "512 KiB" → bytes.
    static func parseSize(_ text: String) -> Int? {
        let t = text.trimmingWhitespace()
        for (suffix, shift) in [("GiB", 30), ("MiB", 20), ("KiB", 10)] where t.hasSuffix(suffix) {
            guard let n = Int(t.dropLast(suffix.count).trimmingWhitespace()), n >= 0 else { return nil }
            return n << shift
        }
        guard let n = Int(t), n >= 0 else { return nil }
        return n
    }

    // MARK: Writing

    /// The configuration as a commented YAML file.
    public func rendered() -> String {
        func q(_ s: String) -> String { "\"" + s.replacing("\\", with: "\\\\").replacing("\"", with: "\\\"") + "\"" }
        var lines = [
            "# fbk client configuration (YAML). Every field is described in fbk's README.",
            "client: \(q(client))",
        ]
        if let host { lines.append("host: \(q(host))") }
        lines.append("recipients:")
        lines += recipients.map { "  - \(q($0))" }
        lines.append("secret: \(q(secret))")
        lines.append("state: \(q(state))")
        lines.append("mirrors:")
        for m in mirrors {
            lines.append("  - url: \(q(m.url))")
            if let u = m.user { lines.append("    user: \(q(u))") }
            if let p = m.passwordFile { lines.append("    password_file: \(q(p))") }
            if let s3 = m.s3 {
                lines.append("    endpoint: \(q(s3.endpoint))")
                lines.append("    region: \(q(s3.region))")
                lines.append("    credentials_file: \(q(s3.credentialsFile))")
                if s3.virtualHost { lines.append("    addressing: virtual") }
                if let lock = s3.objectLock {
                    lines.append("    object_lock: \(lock.mode.rawValue.lowercased())")
                    lines.append("    object_lock_days: \(lock.days)")
                }
            }
        }
        lines.append("required_mirrors: \(requiredMirrors)")
        lines.append("paths:")
        lines += paths.map { "  - \(q($0))" }
        if excludes.isEmpty { lines.append("excludes: []") } else {
            lines.append("excludes:")
            lines += excludes.map { "  - \(q($0))" }
        }
        if !excludeFrom.isEmpty { lines.append("exclude_from:"); lines += excludeFrom.map { "  - \(q($0))" } }
        if excludeCaches { lines.append("exclude_caches: true") }
        if !excludeIfPresent.isEmpty { lines.append("exclude_if_present:"); lines += excludeIfPresent.map { "  - \(q($0))" } }
        if let excludeLargerThan { lines.append("exclude_larger_than: \(excludeLargerThan)") }
        if let uploadLimit { lines.append("upload_limit: \(uploadLimit)") }
        if !commands.isEmpty {
            lines.append("commands:")
            for c in commands {
                lines.append("  - name: \(q(c.name))")
                lines.append("    run: \(q(c.run))")
                if let u = c.user { lines.append("    user: \(q(u))") }
                if c.timeout != CommandSource(name: "", run: "").timeout { lines.append("    timeout: \(c.timeout)s") }
            }
        }
        for (key, list) in [("before", hooks.before), ("after", hooks.after), ("on_failure", hooks.onFailure)] where !list.isEmpty {
            lines.append("\(key):")
            lines += list.map { "  - \(q($0))" }
        }
        if hooks.timeout != Hooks().timeout { lines.append("hook_timeout: \(hooks.timeout)s") }
        if hooks.continueIfBeforeFails { lines.append("before_failure: continue") }
        lines.append("one_filesystem: \(oneFilesystem)")
        lines.append("compression_level: \(compressionLevel)")
        lines.append("pack_size: \(packSize)")
        lines.append("pipeline_memory: \(pipelineMemory)")
        lines.append("workers: \(workers)")
        lines.append("spool_limit: \(spoolLimit)")
        lines.append("log_interval: \(logInterval)")
        lines.append("connect_timeout: \(connectTimeout)")
        lines.append("stall_timeout: \(stallTimeout)")
        lines.append("retry_delays: [\(retryDelays.map { String($0) }.joined(separator: ", "))]")
        lines.append("# Reuse only packs a snapshot needed within this long; keep the servers' prune keep_within above it.")
        lines.append("reuse_horizon: \(reuseHorizon / 86_400 * 86_400 == reuseHorizon ? "\(reuseHorizon / 86_400)d" : "\(reuseHorizon)s")")
        if chunker != .default {
            lines.append("chunker: {min: \(chunker.minimumSize), avg: \(chunker.averageSize), max: \(chunker.maximumSize), window: \(chunker.windowSize)}")
        }
        return lines.joined(separator: "\n") + "\n"
    }
}

/// Reading a YAML configuration file with errors that name the line.
enum YAMLFile {
    /// A function making `FILE:LINE: message` errors.
    static func failure(_ file: String) -> (Node?, String) -> StoreError {
        { node, message in StoreError(.config, "\(file):\(node?.mark.map { String($0.line) } ?? "1"): \(message)") }
    }

    /// The document's top-level mapping.
    static func mapping(_ text: String, file: String, what: String) throws(StoreError) -> (Node, Node.Mapping) {
        let root: Node?
        do { root = try YAML.compose(text) } catch {
            throw StoreError(.config, "\(file): not valid YAML: \(error)")
        }
        guard let root, case .mapping(let mapping) = root else { throw failure(file)(root, what) }
        return (root, mapping)
    }
}
