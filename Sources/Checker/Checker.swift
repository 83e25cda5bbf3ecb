// The weekly server-side check (FORMAT.md, "Checking a mirror"): is every
// enrolled client uploading, is every snapshot complete, do sizes look
// normal; from the storage directory alone, never with a decryption key.
// Time is the server's own receipt time (file mtime), never a client's claim.

import FoundationEssentials
import Glibc
import Seal
import Backend
import Format
import Config
import Platform

public enum CheckLevel: String, Encodable, Sendable, Comparable {
    case ok = "OK", warn = "WARN", fail = "FAIL"
    var rank: Int { self == .ok ? 0 : self == .warn ? 1 : 2 }
    public static func < (a: CheckLevel, b: CheckLevel) -> Bool { a.rank < b.rank }
}

public struct CheckFinding: Encodable, Sendable {
    public var level: CheckLevel
    public var message: String
}

public struct ClientReport: Encodable, Sendable {
    public var client: String
    public var kind: String
    public var status: CheckLevel = .ok
    public var findings: [CheckFinding] = []
    public var newestAgeSeconds: Double?
    public var storedBytes: Int = 0
    public var snapshots = 0
    public var packsMissing = 0

    enum CodingKeys: String, CodingKey {
        case client, kind, status, findings, snapshots
        case newestAgeSeconds = "newest_age_seconds"
        case storedBytes = "stored_bytes"
        case packsMissing = "packs_missing"
    }

    public mutating func add(_ level: CheckLevel, _ message: String) {
        findings.append(CheckFinding(level: level, message: message))
        status = max(status, level)
    }
}

public struct CheckReport: Encodable, Sendable {
    public var status: CheckLevel = .ok
    public var clients: [ClientReport] = []
    /// Directories and files in the storage root that belong to no enrolled client.
    public var strangers: [String] = []
    public var checkedAt: String = ""
    public var version = fbkVersion

    enum CodingKeys: String, CodingKey {
        case status, clients, strangers, version
        case checkedAt = "checked_at"
    }

    public var exitCode: Int32 { Int32(status.rank) }

    public func text() -> String {
        var lines: [String] = []
        for c in clients {
            lines.append("\(c.status.rawValue)  \(c.client) (\(c.kind)): \(c.snapshots) snapshots, \(c.storedBytes) bytes stored"
                + (c.newestAgeSeconds.map { String(cFormat: ", newest %.1f h old", $0 / 3600) } ?? ""))
            for f in c.findings where f.level != .ok { lines.append("      \(f.level.rawValue): \(f.message)") }
        }
        for s in strangers { lines.append("WARN  stranger in the storage root: \(s)") }
        lines.append("overall: \(status.rawValue)")
        // Names come from the storage: anyone with an upload account chooses them.
        return lines.map(\.terminalSafe).joined(separator: "\n")
    }

    /// node_exporter textfile metrics.
    public func prometheus(now: Date) -> String {
        var out = [
            "# HELP fbk_check_status Check result per client: 0 OK, 1 WARN, 2 FAIL.",
            "# TYPE fbk_check_status gauge",
        ]
        for c in clients { out.append("fbk_check_status{client=\"\(c.client)\"} \(c.status.rank)") }
        out += ["# HELP fbk_newest_backup_age_seconds Age of the newest complete snapshot or blob, by server receipt time.",
                "# TYPE fbk_newest_backup_age_seconds gauge"]
        for c in clients { if let a = c.newestAgeSeconds { out.append("fbk_newest_backup_age_seconds{client=\"\(c.client)\"} \(Int(a))") } }
        out += ["# HELP fbk_stored_bytes Bytes stored for the client on this mirror.", "# TYPE fbk_stored_bytes gauge"]
        for c in clients { out.append("fbk_stored_bytes{client=\"\(c.client)\"} \(c.storedBytes)") }
        out += ["# HELP fbk_packs_missing Packs that catalogs list but the mirror lacks or holds damaged.", "# TYPE fbk_packs_missing gauge"]
        for c in clients { out.append("fbk_packs_missing{client=\"\(c.client)\"} \(c.packsMissing)") }
        out += ["# HELP fbk_strangers Entries in the storage root that belong to no enrolled client.", "# TYPE fbk_strangers gauge",
                "fbk_strangers \(strangers.count)",
                "# HELP fbk_check_timestamp_seconds When the check ran.", "# TYPE fbk_check_timestamp_seconds gauge",
                "fbk_check_timestamp_seconds \(Int(now.timeIntervalSince1970))"]
        return out.joined(separator: "\n") + "\n"
    }
}

public enum Checker {
    /// A day that adds more than this many times the expected (or usual) growth is flagged.
    static let growthFactor = 10.0

    /// Packs no catalog needs are flagged once they are older than this: a
    /// run uploads its packs before its catalog, and a spool may deliver
    /// them days later.
    public static let defaultOrphanGrace: TimeInterval = 7 * 86_400
    /// nginx's upload temporaries (deploy/nginx `client_body_temp_path`,
    /// made by deploy/install-server.sh): part of the layout, not a stranger.
    public static let uploadDirectory = ".incoming"
    /// Where prune moves what it removes (FORMAT.md, "Retention"): part of
    /// the layout, not a stranger. `retired/snapshots/` there holds the
    /// catalogs of removed snapshots whose listings are kept.
    public static let trashDirectory = ".fbk-trash"
    /// Under a client's trash: the catalogs of removed snapshots whose listings are kept.
    public static let retiredDirectory = "retired"
    /// How far a catalog's `created` may lie after the server received it.
    static let allowedSkew: TimeInterval = 3600

    /// - Parameters:
    ///   - state: what earlier runs verified; new and changed objects and a
    ///     rolling share of the rest are hashed (`CheckState`).
    public static func run(config: CheckConfig, root: String, deep: Bool, now: Date = Date(),
                           state: CheckState? = nil, orphanGrace: TimeInterval = defaultOrphanGrace) -> CheckReport {
        run(config: config, storage: LocalStorageRoot(root), deep: deep, now: now, state: state, orphanGrace: orphanGrace)
    }

    /// The same on any storage root: a directory, or a bucket read with operator credentials.
    public static func run(config: CheckConfig, storage: any StorageRoot, deep: Bool, now: Date = Date(),
                           state: CheckState? = nil, orphanGrace: TimeInterval = defaultOrphanGrace) -> CheckReport {
        var report = CheckReport()
        report.checkedAt = Timestamp.rfc3339(now)
        let enrolled = Set(config.clients.map(\.name))
        for name in ((try? storage.topLevel()) ?? [])
        where !enrolled.contains(name) && name != uploadDirectory && name != trashDirectory {
            report.strangers.append(name)
        }
        for client in config.clients {
            var r = ClientReport(client: client.name, kind: client.kind.rawValue)
            let dir = storage.location + (storage.location.hasSuffix("/") ? "" : "/") + client.name
            let backend: any Backend, inventory: Inventory
            do {
                backend = try storage.client(client.name)
            } catch {
                r.add(.fail, storage is LocalStorageRoot ? "never uploaded: \(dir) does not exist" : "\(dir) cannot be read: \(error.message)")
                report.clients.append(r)
                continue
            }
            do {
                inventory = try backend.inventory()
            } catch {
                r.add(.fail, "\(dir) cannot be listed: \(error.message)")
                report.clients.append(r)
                continue
            }
            do {
                let all = Dictionary(inventory.objects.map { ($0.path, $0) }, uniquingKeysWith: { a, _ in a })
                for o in inventory.others {
                    r.add(.warn, "stranger: \(o) is not a regular file (a link, FIFO, socket or device no upload makes): planted")
                }
                let hasher = ObjectHasher(backend: backend, client: client.name, all: all, deep: deep, state: state, now: now)
                for (path, f) in all.sorted(by: { $0.key < $1.key }) where f.size == 0 {
                    r.add(.warn, "\(path) is an empty file: a leftover of a failed upload, or planted")
                }
                if client.kind == .fbk {
                    let trash = try? storage.directory(trashDirectory + "/" + client.name)
                    let retired = Set(((try? trash?.members(of: retiredDirectory + "/snapshots")) ?? [])
                        .compactMap { ObjectName(parsing: "snapshots/" + $0.name)?.snapshotID })
                    checkFbkClient(client, backend: backend, all: all, hasher: hasher, now: now, orphanGrace: orphanGrace,
                                   retired: retired, into: &r)
                } else {
                    checkDevice(client, backend: backend, all: all, hasher: hasher, now: now, into: &r)
                }
                for (path, why) in hasher.unreadable.sorted(by: { $0.key < $1.key }) {
                    r.add(.fail, "\(path) cannot be read to be verified (\(why)): a failing disk, or replaced by something that is not a file")
                }
                for (path, first) in hasher.changed.sorted(by: { $0.key < $1.key }) {
                    r.add(.fail, "\(path) changed since this check first verified it (SHA-256 was \(first.prefix(16))…): objects are written once, so it was tampered with or the disk is failing")
                }
            }
            report.clients.append(r)
        }
        report.status = max(report.clients.map(\.status).max() ?? .ok, report.strangers.isEmpty ? .ok : .warn)
        return report
    }

    /// The objects of one client on a storage root (none if it has no directory there).
    static func files(_ root: any StorageRoot, client: String) throws(BackendError) -> [String: StoredObject] {
        guard let backend = try? root.client(client) else { return [:] }
        return Dictionary(try backend.inventory().objects.map { ($0.path, $0) }, uniquingKeysWith: { a, _ in a })
    }

    /// Hashes objects: all of them with `--deep`, else those the state
    /// says are due; remembers each hash in the state.
    final class ObjectHasher {
        let backend: any Backend
        let client: String
        let all: [String: StoredObject]
        let deep: Bool
        let state: CheckState?
        let now: Date
        let due: Set<String>
        private var hashes: [String: String?] = [:]
        /// Objects whose hash differs from the one first recorded: path → first hash.
        private(set) var changed: [String: String] = [:]
        /// Objects that could not be read to be hashed: path → why.
        private(set) var unreadable: [String: String] = [:]

        init(backend: any Backend, client: String, all: [String: StoredObject], deep: Bool, state: CheckState?, now: Date) {
            (self.backend, self.client, self.all, self.deep, self.state, self.now) = (backend, client, all, deep, state, now)
            due = state?.toHash(all.values.map { (client + "/" + $0.path, $0.size, $0.receivedNanoseconds) }) ?? []
        }

        /// The object's SHA-256 if it is to be hashed this run, else nil.
        func hash(_ path: String) -> String? {
            guard deep || due.contains(client + "/" + path), let f = all[path] else { return nil }
            if let h = hashes[path] { return h }
            var h: String?
            do {
                h = try SHA256.hash(fileAt: backend.fetch(path, limit: .max).path).digest.hex
            } catch {
                unreadable[path] = "\(error)"
            }
            hashes[path] = h
            if let h, let first = state?.record(client + "/" + path, size: f.size, mtime: f.receivedNanoseconds, sha256: h, now: now) {
                changed[path] = first
            }
            return h
        }
    }

    static func checkFbkClient(_ client: EnrolledClient, backend: any Backend, all: [String: StoredObject], hasher: ObjectHasher,
                               now: Date, orphanGrace: TimeInterval, retired: Set<SnapshotID> = [], into r: inout ClientReport) {
        let hash = hasher.hash
        // Names and minimal sizes: anything else is a stranger.
        var snapshotIDs = Set<SnapshotID>()
        for (path, f) in all.sorted(by: { $0.key < $1.key }) {
            let name = ObjectName(parsing: path)
            if let name, let id = name.packID {
                if f.size < 100 { r.add(.warn, "\(path) is \(f.size) bytes: too small to be a sealed pack") }
                if let h = hash(path), h != id.hex { r.add(.fail, "\(path): SHA-256 of its bytes is \(h), not its name: damaged or planted") }
                r.storedBytes += f.size
            } else if let id = name?.snapshotID {
                snapshotIDs.insert(id)
                r.storedBytes += f.size
            } else if name?.kind == .escrow {
                r.storedBytes += f.size
                _ = hash(path)
                if f.size > ObjectLimits.escrow { r.add(.fail, "\(path) is \(f.size) bytes: not an escrowed secret") }
            } else {
                r.add(.warn, "stranger: \(path) is not an fbk object")
            }
        }
        // Catalogs: signed by the enrolled key, or flagged.
        var catalogs: [(Catalog, StoredObject)] = []
        for id in snapshotIDs.sorted() {
            let path = ObjectName.catalog(id).path
            guard let f = all[path] else {
                // Prune keeps a removed snapshot's listing while packs it maps survive.
                if !retired.contains(id) { r.add(.warn, "snapshot \(id) has no catalog: half-uploaded or interrupted") }
                continue
            }
            let data: [UInt8]
            do { data = try backend.read(path, limit: ObjectLimits.document, what: "catalog") } catch {
                r.add(.fail, "\(path): \(error.message)")
                continue
            }
            do {
                let (c, _) = try SignedDocument.decode(Catalog.self, from: data, name: path, verifyingKey: client.signingKey)
                guard c.client == client.name, c.snapshot == id else {
                    r.add(.fail, "\(path) names \(c.client)/\(c.snapshot): not this client's snapshot")
                    continue
                }
                _ = hash(path)
                if let created = parseRFC3339(c.created), let received = f.received, created > received + allowedSkew {
                    r.add(.warn, "snapshot \(id) claims to be created \(c.created), after this server received it (\(Timestamp.rfc3339(received))): a client clock far ahead, or a forged date; restores order snapshots by receipt time and refuse such a record")
                }
                catalogs.append((c, f))
            } catch {
                r.add(.fail, "\(path) is not signed by \(client.name)'s enrolled key: written by someone else (a compromised server or a stolen password?)")
            }
        }
        r.snapshots = catalogs.count
        // Completeness, per snapshot.
        var missingPacks = Set<String>()
        for (c, _) in catalogs {
            var problems: [String] = []
            var objects = c.packs + [c.record]
            if let l = c.listing { objects.append(l) }
            for o in objects {
                guard let f = all[o.path] else {
                    problems.append("\(o.path) missing")
                    if ObjectName(parsing: o.path)?.kind == .pack { missingPacks.insert(o.path) }
                    continue
                }
                if f.size != o.size {
                    problems.append("\(o.path) is \(f.size) bytes, the catalog says \(o.size) (truncated?)")
                    if ObjectName(parsing: o.path)?.kind == .pack { missingPacks.insert(o.path) }
                } else if let h = hash(o.path), h != o.sha256 {
                    problems.append("\(o.path) does not match the catalog's SHA-256 (damaged)")
                    if ObjectName(parsing: o.path)?.kind == .pack { missingPacks.insert(o.path) }
                }
            }
            if !problems.isEmpty {
                r.add(.fail, "snapshot \(c.snapshot) is incomplete: " + problems.prefix(5).joined(separator: "; ")
                      + (problems.count > 5 ? "; and \(problems.count - 5) more" : ""))
            }
        }
        r.packsMissing = missingPacks.count
        checkRecipients(catalogs.map(\.0), backend: backend, all: all, into: &r)
        checkHorizon(client, catalogs: catalogs, now: now, into: &r)
        // The escrow: without it, a restore needs the client secret from the enrollment bundle.
        if !catalogs.isEmpty && all[ObjectName.escrow.path] == nil {
            r.add(.warn, "\(ObjectName.escrow.path) is missing: a restore from this mirror needs the client secret from the enrollment bundle (--secret); it was deleted, or never uploaded")
        }
        // Packs no signed catalog needs, older than the grace period.
        let needed = Set(catalogs.flatMap { $0.0.packs.map(\.path) })
        let orphans = all.values.filter {
            $0.path.hasPrefix("packs/") && !needed.contains($0.path) && now.timeIntervalSince($0.received ?? now) > orphanGrace
        }
        if !orphans.isEmpty {
            let bytes = orphans.reduce(0) { $0 + $1.size }
            r.add(.warn, "\(orphans.count) packs (\(bytes) bytes) received over \(Int(orphanGrace / 86_400)) days ago are needed by no signed catalog (e.g. \(orphans.map(\.path).min()!)): left by interrupted runs, or uploaded by someone else")
        }
        // Freshness, by the server's receipt time of the newest catalog.
        if let newest = catalogs.compactMap({ $0.1.received }).max() {
            let age = now.timeIntervalSince(newest)
            r.newestAgeSeconds = age
            if age > client.maxAge {
                r.add(.fail, String(cFormat: "stale: the newest snapshot arrived %.1f h ago (at most %.0f h expected)", age / 3600, client.maxAge / 3600))
            }
        } else {
            r.add(.fail, "no complete snapshot: no catalog signed by this client")
        }
        checkGrowth(client, all: all, catalogs: catalogs, into: &r)
    }

    /// Every pack of each snapshot must be sealed to every recipient its
    /// catalog names (FORMAT.md, "Retention": re-keying), read from the
    /// packs' CMS headers, which are plaintext: no key is needed.
    static func checkRecipients(_ catalogs: [Catalog], backend: any Backend, all: [String: StoredObject], into r: inout ClientReport) {
        var sealedTo: [String: Set<String>?] = [:]   // pack → hex IssuerAndSerialNumber of its recipients (nil: unreadable)
        func recipients(of path: String) -> Set<String>? {
            if let known = sealedTo[path] { return known }
            var found: Set<String>?
            var length = 8 << 10
            while length <= CMSRecipients.headerLimit {
                guard let prefix = try? backend.fetch(path, range: 0..<length) else { break }
                do {
                    if let ids = try CMSRecipients.identifiers(prefix: prefix) {
                        found = Set(ids.map { Hex.encode($0) })
                        break
                    }
                } catch {
                    r.add(.fail, "\(path): \(error.message)")
                    break
                }
                guard prefix.count == length else { break }
                length *= 4
            }
            sealedTo[path] = .some(found)
            return found
        }
        var problems: [String] = []
        for c in catalogs {
            guard let wanted = c.recipients, !wanted.isEmpty else { continue }
            for o in c.packs where all[o.path]?.size == o.size {
                guard let have = recipients(of: o.path) else { continue }
                for w in wanted where !have.contains(w.issuerSerial.lowercased()) {
                    problems.append("\(o.path) is not sealed to certificate \(w.fingerprint.prefix(16))… that snapshot \(c.snapshot) names: that key cannot restore it")
                    break
                }
            }
        }
        for p in Set(problems).sorted().prefix(5) { r.add(.fail, p) }
        if problems.count > 5 { r.add(.fail, "and \(problems.count - 5) more packs not sealed to every recipient their catalogs name") }
    }

    /// A client's reuse horizon must be covered by its retention policy:
    /// else prune may remove packs the client still deduplicates against.
    static func checkHorizon(_ client: EnrolledClient, catalogs: [(Catalog, StoredObject)], now: Date, into r: inout ClientReport) {
        guard let policy = client.retention else { return }
        let newest = catalogs.max { ($0.1.received ?? .distantPast) < ($1.1.received ?? .distantPast) }
        guard let newest else { return }
        guard let h = newest.0.reuseHorizon else {
            r.add(.warn, "the newest snapshot states no reuse horizon (an fbk from before retention): fbk prune refuses this client until it runs a newer fbk")
            return
        }
        if !policy.protects(horizon: h) {
            r.add(.warn, "reuse horizon \(h / 86_400) days plus spool_delay \(Int(policy.spoolDelay / 86_400)) days exceeds keep_within \(Int(policy.keepWithin / 86_400)) days: fbk prune refuses this client (raise keep_within, or lower reuse_horizon on the client)")
        }
    }

    /// Bytes added per receipt day against the expected and the usual growth;
    /// the total against the expected full size; a snapshot suddenly empty.
    static func checkGrowth(_ client: EnrolledClient, all: [String: StoredObject],
                            catalogs: [(Catalog, StoredObject)], into r: inout ClientReport) {
        let calendar = Calendar(identifier: .gregorian)
        var utc = calendar
        utc.timeZone = TimeZone(secondsFromGMT: 0)!
        var perDay: [Date: Int] = [:]
        for f in all.values where ObjectName(parsing: f.path)?.kind == .pack {
            perDay[utc.startOfDay(for: f.received ?? Date(timeIntervalSince1970: 0)), default: 0] += f.size
        }
        let days = perDay.keys.sorted()
        if let last = days.last, let added = perDay[last] {
            let earlier = days.dropLast().map { perDay[$0]! }.sorted()
            let usual = earlier.isEmpty ? nil : earlier[earlier.count / 2]
            let day = Timestamp.compactTime(last).prefix(8)
            if let expected = client.expectedDailyGrowth, Double(added) > growthFactor * Double(expected), days.count > 1 {
                r.add(.warn, "day \(day) added \(added) bytes, over \(Int(growthFactor)) times the expected \(expected) (mass rewrite? ransomware?)")
            } else if let usual, earlier.count >= 3, usual > 0, Double(added) > growthFactor * Double(usual) {
                r.add(.warn, "day \(day) added \(added) bytes, over \(Int(growthFactor)) times the usual \(usual) (mass rewrite? ransomware?)")
            }
        }
        if let expected = client.expectedFullSize, r.storedBytes > 0 {
            let ratio = Double(r.storedBytes) / Double(expected)
            if ratio < 0.1 || ratio > 4 {
                r.add(.warn, "\(r.storedBytes) bytes stored, far from the expected full size \(expected)")
            }
        }
        let ordered = catalogs.sorted { ($0.1.received ?? .distantPast) < ($1.1.received ?? .distantPast) }
        if ordered.count >= 2 {
            let last = ordered[ordered.count - 1].0, before = ordered[ordered.count - 2].0
            if before.packs.count >= 10 && last.packs.count * 10 < before.packs.count {
                r.add(.warn, "snapshot \(last.snapshot) needs \(last.packs.count) packs, the one before \(before.packs.count): a sudden drop (an empty or unmounted source?)")
            }
        }
    }

    // MARK: Devices

    /// `blobs/KIND-YYYYMMDDTHHMMSSZ-RANDOM.cms` (RANDOM optional), or a set of parts with a manifest (FORMAT.md section 12;
    /// `ObjectName` parses them). Since the red-team run a random part follows the time (`-` and 16 hex digits), so no
    /// name can be taken before the device uses it.
    static func checkDevice(_ client: EnrolledClient, backend: any Backend, all: [String: StoredObject], hasher: ObjectHasher,
                            now: Date, into r: inout ClientReport) {
        struct BlobSet { var single: StoredObject?; var parts: [Int: StoredObject] = [:]; var manifest: StoredObject? }
        var sets: [String: [String: BlobSet]] = [:]   // kind → time → set
        for (path, f) in all {
            guard let blob = ObjectName(parsing: path)?.blob else {
                r.add(.warn, "stranger: \(path) is not a device blob name")
                continue
            }
            r.storedBytes += f.size
            _ = hasher.hash(path)
            var set = sets[blob.kind, default: [:]][blob.time, default: BlobSet()]
            if blob.isManifest { set.manifest = f } else if let n = blob.part { set.parts[n] = f } else { set.single = f }
            sets[blob.kind, default: [:]][blob.time] = set
        }
        var newestOverall: Date?
        for kind in client.blobs {
            let maxAge = kind.maxAge ?? client.maxAge
            var newest: (time: String, size: Int, received: Date)?
            for (time, set) in (sets[kind.name] ?? [:]).sorted(by: { $0.key > $1.key }) {
                if let single = set.single {
                    newest = (time, single.size, single.received ?? .distantPast)
                    break
                }
                // A set of parts counts only when its manifest lists exactly the parts present, with their sizes.
                guard let manifest = set.manifest,
                      let bytes = try? backend.read(manifest.path, limit: 1 << 20, what: "manifest") else {
                    r.add(.warn, "\(kind.name) set \(time) has parts but no manifest: incomplete upload")
                    continue
                }
                var total = 0, complete = true
                let lines = String(decoding: bytes, as: UTF8.self).split(separator: "\n")
                let partLines = lines.filter { $0.hasPrefix("part ") }
                for line in partLines {
                    let fields = line.split(separator: " ")
                    guard fields.count == 4, let n = Int(fields[1]), let size = Int(fields[2]) else { complete = false; continue }
                    guard let f = set.parts[n], f.size == size else { complete = false; continue }
                    if let h = hasher.hash(f.path), h != String(fields[3]) { complete = false }
                    total += size
                }
                if !complete || partLines.count != set.parts.count || partLines.isEmpty {
                    r.add(.fail, "\(kind.name) set \(time) is incomplete: its parts do not match its manifest")
                    continue
                }
                let received = ([manifest] + Array(set.parts.values)).compactMap(\.received).max() ?? .distantPast
                newest = (time, total, received)
                break
            }
            guard let newest else {
                r.add(.fail, "no \(kind.name) blob has arrived")
                continue
            }
            let age = now.timeIntervalSince(newest.received)
            newestOverall = max(newestOverall ?? newest.received, newest.received)
            if age > maxAge {
                r.add(.fail, "stale: the newest \(kind.name) blob arrived " + String(cFormat: "%.1f h ago (at most %.0f h expected)", age / 3600, maxAge / 3600))
            }
            if newest.size < kind.minSize {
                r.add(.fail, "the newest \(kind.name) blob (\(newest.time)) is \(newest.size) bytes, less than the expected minimum \(kind.minSize)")
            }
            r.snapshots += 1
        }
        if let newestOverall { r.newestAgeSeconds = now.timeIntervalSince(newestOverall) }
    }

    // MARK: Two mirrors

    /// Objects each enrolled client has on one storage root but not the other.
    public static func compare(config: CheckConfig, rootA: any StorageRoot, rootB: any StorageRoot) throws(StoreError) -> [(client: String, onlyA: [String], onlyB: [String])] {
        var out: [(client: String, onlyA: [String], onlyB: [String])] = []
        for c in config.clients {
            do {
                let a = Set(try files(rootA, client: c.name).keys), b = Set(try files(rootB, client: c.name).keys)
                out.append((c.name, a.subtracting(b).sorted(), b.subtracting(a).sorted()))
            } catch {
                throw error.storeError
            }
        }
        return out
    }
}
