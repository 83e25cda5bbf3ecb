// The weekly check's configuration: the enrolled clients and what to
// expect of each. YAML, like the client configuration; errors name the line.

import FoundationEssentials
import Glibc
import Seal
import Platform

/// One enrolled client, as the check sees it.
public struct EnrolledClient: Sendable, Equatable {
    public enum Kind: String, Sendable { case fbk, device }

    /// What a device uploads: blobs of one kind (e.g. `sysupgrade`, `flash`, `zfs`).
    public struct BlobKind: Sendable, Equatable {
        public var name: String
        public var minSize: Int
        public var maxAge: TimeInterval?
    }

    public var name: String
    public var kind: Kind
    /// Newest snapshot or blob must be younger (server receipt time).
    public var maxAge: TimeInterval = 36 * 3600
    /// The client's Ed25519 public key (fbk clients): catalogs must verify with it.
    public var signingKey: VerifyingKey?
    public var expectedFullSize: Int?
    public var expectedDailyGrowth: Int?
    public var blobs: [BlobKind] = []
    /// What `fbk prune` keeps of this client; nil: nothing is pruned.
    public var retention: RetentionPolicy?
}

/// Which snapshots (and device blob sets) prune keeps, judged by the
/// server's receipt times (FORMAT.md, "Retention"). Every snapshot
/// received within `keepWithin` is kept; of the older ones, the newest
/// `keepLast`, and the newest of each of the last `keepDaily` days (UTC),
/// `keepWeekly` ISO weeks, `keepMonthly` months and `keepYearly` years
/// that have one.
public struct RetentionPolicy: Sendable, Equatable {
    public var keepWithin: TimeInterval
    public var keepLast = 3
    public var keepDaily = 0
    public var keepWeekly = 0
    public var keepMonthly = 0
    public var keepYearly = 0
    /// The longest a snapshot's upload may be delayed in a client's spool
    /// (a mirror down): keep_within must cover the client's reuse horizon
    /// plus this.
    public var spoolDelay: TimeInterval = 3 * 86_400

    public init(keepWithin: TimeInterval) { self.keepWithin = keepWithin }

    /// Whether `horizon` (a client's reuse horizon, seconds) is protected:
    /// a snapshot may reuse packs a snapshot needed up to `horizon` before
    /// it, and may arrive `spoolDelay` late.
    public func protects(horizon: Int) -> Bool { TimeInterval(horizon) + spoolDelay <= keepWithin }
}

public struct CheckConfig: Sendable, Equatable {
    public var clients: [EnrolledClient]
    /// How long prune keeps what it removed in the trash before purging it.
    public var trashGrace: TimeInterval = 14 * 86_400

    public static func load(path: String) throws(StoreError) -> CheckConfig {
        let data = try readOperatorFile(path, limit: 16 << 20, what: "check configuration",
                                        advice: "give --config with the file that lists the enrolled clients and their signing keys (README.md, \"Retention\"; fbk check --help)")
        return try parse(String(decoding: data, as: UTF8.self), file: path)
    }

    public static func parse(_ text: String, file: String) throws(StoreError) -> CheckConfig {
        let fail = YAMLFile.failure(file)
        let (root, top) = try YAMLFile.mapping(text, file: file, what: "the check configuration needs a list 'clients'")
        guard let clientsNode = top["clients"], case .sequence(let seq) = clientsNode else {
            throw fail(root, "the check configuration needs a list 'clients'")
        }
        var trashGrace: TimeInterval?
        for (k, v) in top where k.string != "clients" {
            guard k.string == "trash_grace" else { throw fail(k, "unknown field '\(k.string ?? "?")' (known: clients, trash_grace)") }
            guard case .scalar(let s) = v, let d = parseDuration(s.string) else { throw fail(v, "trash_grace must be a duration like 14d") }
            trashGrace = d
        }
        var clients: [EnrolledClient] = []
        for item in seq {
            guard case .mapping(let m) = item else { throw fail(item, "each client is a mapping") }
            var c = EnrolledClient(name: "", kind: .fbk)
            for (k, v) in m {
                guard let key = k.string, case .scalar(let s) = v else {
                    if k.string == "retention", case .mapping(let rm) = v {
                        c.retention = try parseRetention(rm, node: v, fail: fail)
                        continue
                    }
                    if k.string == "blobs", case .sequence(let blobs) = v {
                        for b in blobs {
                            guard case .mapping(let bm) = b else { throw fail(b, "each blob kind is a mapping") }
                            var kind = EnrolledClient.BlobKind(name: "", minSize: 1, maxAge: nil)
                            for (bk, bv) in bm {
                                guard let bkey = bk.string, case .scalar(let bs) = bv else { throw fail(bk, "blob fields are text") }
                                switch bkey {
                                case "kind": kind.name = bs.string
                                case "min_size":
                                    guard let n = parseQuantity(bs.string) else { throw fail(bv, "min_size must be a size") }
                                    kind.minSize = n
                                case "max_age":
                                    guard let d = parseDuration(bs.string) else { throw fail(bv, "max_age must be a duration like 36h or 7d") }
                                    kind.maxAge = d
                                default: throw fail(bk, "unknown blob field '\(bkey)' (known: kind, min_size, max_age)")
                                }
                            }
                            guard !kind.name.isEmpty else { throw fail(b, "a blob kind needs 'kind'") }
                            c.blobs.append(kind)
                        }
                        continue
                    }
                    throw fail(k, "client fields must be text")
                }
                switch key {
                case "name": c.name = s.string
                case "kind":
                    guard let kind = EnrolledClient.Kind(rawValue: s.string) else { throw fail(v, "kind must be fbk or device") }
                    c.kind = kind
                case "max_age":
                    guard let d = parseDuration(s.string) else { throw fail(v, "max_age must be a duration like 36h or 7d") }
                    c.maxAge = d
                case "signing_key":
                    guard let raw = Hex.decode(s.string), let key = try? VerifyingKey(raw: raw) else {
                        throw fail(v, "signing_key must be 64 hex digits (the client's signing.pub)")
                    }
                    c.signingKey = key
                case "expected_full_size":
                    guard let n = parseQuantity(s.string) else { throw fail(v, "expected_full_size must be a size like 72GB") }
                    c.expectedFullSize = n
                case "expected_daily_growth":
                    guard let n = parseQuantity(s.string) else { throw fail(v, "expected_daily_growth must be a size like 1GB") }
                    c.expectedDailyGrowth = n
                default:
                    throw fail(k, "unknown client field '\(key)' (known: name, kind, max_age, signing_key, expected_full_size, expected_daily_growth, blobs, retention)")
                }
            }
            guard !c.name.isEmpty else { throw fail(item, "a client needs a name") }
            guard !clients.contains(where: { $0.name == c.name }) else {
                throw fail(item, "client \(c.name) is listed twice: keep one entry (an enroll --rotate needs no new one)")
            }
            if c.kind == .fbk && c.signingKey == nil { throw fail(item, "fbk client \(c.name) needs its signing_key (from signing.pub)") }
            if c.kind == .device && c.blobs.isEmpty { throw fail(item, "device \(c.name) needs its blob kinds") }
            clients.append(c)
        }
        var config = CheckConfig(clients: clients)
        if let trashGrace { config.trashGrace = trashGrace }
        return config
    }

    static func parseRetention(_ m: Node.Mapping, node: Node, fail: (Node?, String) -> StoreError) throws(StoreError) -> RetentionPolicy {
        var within: TimeInterval?
        var counts: [String: Int] = [:]
        var spoolDelay: TimeInterval?
        for (k, v) in m {
            guard let key = k.string, case .scalar(let s) = v else { throw fail(k, "retention fields are text") }
            switch key {
            case "keep_within":
                guard let d = parseDuration(s.string) else { throw fail(v, "keep_within must be a duration like 30d") }
                within = d
            case "spool_delay":
                guard let d = parseDuration(s.string) else { throw fail(v, "spool_delay must be a duration like 3d") }
                spoolDelay = d
            case "keep_last", "keep_daily", "keep_weekly", "keep_monthly", "keep_yearly":
                guard let n = Int(s.string), n >= 0, n <= 100_000 else { throw fail(v, "\(key) must be a count (0 or more)") }
                counts[key] = n
            default:
                throw fail(k, "unknown retention field '\(key)' (known: keep_within, keep_last, keep_daily, keep_weekly, keep_monthly, keep_yearly, spool_delay)")
            }
        }
        guard let within else {
            throw fail(node, "retention needs keep_within (at least the clients' reuse_horizon, 14d by default, plus spool_delay): every snapshot received within it is kept")
        }
        var p = RetentionPolicy(keepWithin: within)
        if let n = counts["keep_last"] {
            guard n >= 1 else { throw fail(node, "keep_last must be at least 1: prune never removes the newest snapshot") }
            p.keepLast = n
        }
        p.keepDaily = counts["keep_daily"] ?? 0
        p.keepWeekly = counts["keep_weekly"] ?? 0
        p.keepMonthly = counts["keep_monthly"] ?? 0
        p.keepYearly = counts["keep_yearly"] ?? 0
        if let spoolDelay { p.spoolDelay = spoolDelay }
        return p
    }

    /// "72GB", "1.5 GiB", "300MB", "4096" → bytes.
    static func parseQuantity(_ text: String) -> Int? {
        let t = text.trimmingWhitespace()
        let units: [(String, Double)] = [("GiB", 1_073_741_824), ("MiB", 1_048_576), ("KiB", 1024), ("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("KB", 1e3), ("B", 1)]
        for (u, factor) in units where t.hasSuffix(u) {
            guard let v = Double(t.dropLast(u.count).trimmingWhitespace()), v >= 0 else { return nil }
            return Int(v * factor)
        }
        return Int(t).flatMap { $0 >= 0 ? $0 : nil }
    }

    /// "36h", "7d", "90m", "3600s" → seconds.
    static func parseDuration(_ text: String) -> TimeInterval? {
        let t = text.trimmingWhitespace()
        for (u, factor) in [("d", 86_400.0), ("h", 3600.0), ("m", 60.0), ("s", 1.0)] where t.hasSuffix(u) {
            guard let v = Double(t.dropLast()), v > 0 else { return nil }
            return v * factor
        }
        return nil
    }
}
