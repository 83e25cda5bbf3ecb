// `fbk prune`: removes from one mirror's storage root what each client's
// retention policy no longer keeps, without any key (FORMAT.md,
// "Retention"). Everything is judged by this server's receipt times and
// by catalogs that verify with the client's enrolled key.
//
// Per client, in this order:
//   1. give back from the trash what a verified catalog names and the
//      client directory lacks (a catalog that arrived late);
//   2. purge trash runs older than the grace period;
//   3. refuse if the client's check has failures, or its reuse horizon is
//      longer than the policy protects (unless forced);
//   4. keep the snapshots the policy keeps; a pack is removable only if no
//      kept catalog lists it and it arrived longer ago than keep_within;
//   5. move into the trash: catalogs first (a snapshot is gone once its
//      commit marker is), then records, listings, packs. A kill at any
//      point leaves only objects no kept catalog needs, which the next run
//      removes.

import Backend
import Checker
import Config
import Foundation
import Format
import Platform
import Seal

public struct PrunePlan: Encodable, Sendable {
    public struct ClientPlan: Encodable, Sendable {
        public var client: String
        /// `pruned`, `planned` (dry run), `refused`, `skipped`.
        public var status: String
        public var reason: String?
        public var kept: [String: String] = [:]
        public var removedSnapshots: [String] = []
        public var removedObjects: [String] = []
        public var removedBytes = 0
        public var keptBytes = 0
        public var restoredFromTrash: [String] = []
        public var purgedObjects = 0
        public var purgedBytes = 0
        public var warnings: [String] = []

        enum CodingKeys: String, CodingKey {
            case client, status, reason, kept, warnings
            case removedSnapshots = "removed_snapshots"
            case removedObjects = "removed_objects"
            case removedBytes = "removed_bytes"
            case keptBytes = "kept_bytes"
            case restoredFromTrash = "restored_from_trash"
            case purgedObjects = "purged_objects"
            case purgedBytes = "purged_bytes"
        }
    }

    public var root: String
    public var dryRun: Bool
    public var at: String
    public var clients: [ClientPlan] = []

    enum CodingKeys: String, CodingKey {
        case root, at, clients
        case dryRun = "dry_run"
    }

    /// 0 when every client was pruned (or had nothing to prune), 1 when one was refused.
    public var exitCode: Int32 { clients.contains { $0.status == "refused" } ? 1 : 0 }

    public func text() -> String {
        var lines: [String] = []
        for c in clients {
            var line = "\(c.client): \(c.status)"
            if let r = c.reason { line += ": \(r)" }
            if c.status == "pruned" || c.status == "planned" {
                line += "; \(c.kept.count) snapshots kept, \(c.removedSnapshots.count) removed; "
                    + "\(c.removedObjects.count) objects (\(c.removedBytes) bytes) \(dryRun ? "would go" : "moved") to the trash, \(c.keptBytes) bytes kept"
            }
            lines.append(line)
            if !c.restoredFromTrash.isEmpty { lines.append("  restored from the trash: \(c.restoredFromTrash.joined(separator: ", "))") }
            if c.purgedObjects > 0 { lines.append("  purged from the trash: \(c.purgedObjects) objects, \(c.purgedBytes) bytes") }
            for s in c.removedSnapshots { lines.append("  \(dryRun ? "would remove" : "removed") snapshot \(s)") }
            for w in c.warnings { lines.append("  warning: \(w)") }
        }
        return lines.map(\.terminalSafe).joined(separator: "\n")
    }
}

public enum Pruner {
    public struct Options: Sendable {
        public var dryRun = false
        /// Prune a client whose check fails, or whose horizon the policy does not protect.
        public var force = false
        /// Only these clients (default: every client with a retention policy).
        public var clients: [String]?
        public init() {}
    }

    public static func run(config: CheckConfig, root: String, options: Options, now: Date = WallClock.now()) -> PrunePlan {
        var plan = PrunePlan(root: root, dryRun: options.dryRun, at: Timestamp.rfc3339(now))
        for client in config.clients where options.clients?.contains(client.name) ?? true {
            var p = PrunePlan.ClientPlan(client: client.name, status: "skipped")
            guard let policy = client.retention else {
                p.reason = "no retention policy in the check configuration: nothing is removed"
                plan.clients.append(p)
                continue
            }
            do {
                if client.kind == .fbk {
                    try prune(client, policy: policy, config: config, root: root, options: options, now: now, into: &p)
                } else {
                    try pruneDevice(client, policy: policy, config: config, root: root, options: options, now: now, into: &p)
                }
            } catch {
                p.status = "refused"
                p.reason = error.message
            }
            plan.clients.append(p)
        }
        return plan
    }

    static func prune(_ client: EnrolledClient, policy: RetentionPolicy, config: CheckConfig, root: String,
                      options: Options, now: Date, into p: inout PrunePlan.ClientPlan) throws(StoreError) {
        let backend = try DirectoryBackend(storageRoot: root, client: client.name)
        let trash = Trash(storageRoot: root, client: client.name)
        var all = try inventory(backend)

        // 1. A verified catalog naming something in the trash gets it back.
        var catalogs = verifiedCatalogs(client, backend: backend, all: all, warnings: &p.warnings)
        for (c, _) in catalogs {
            for o in c.packs + [c.record] + (c.listing.map { [$0] } ?? []) where all[o.path] == nil {
                guard let trashed = trash.find(o.path) else { continue }
                p.restoredFromTrash.append(o.path)
                p.warnings.append("snapshot \(c.snapshot) arrived after prune removed \(o.path), which it needs: \(options.dryRun ? "it would be put back" : "put back from the trash")")
                if !options.dryRun { try trash.restore(trashed, as: o.path) }
            }
        }
        if !p.restoredFromTrash.isEmpty && !options.dryRun {
            all = try inventory(backend)
            catalogs = verifiedCatalogs(client, backend: backend, all: all, warnings: &p.warnings)
        }

        // 2. Trash runs past the grace period go for good.
        (p.purgedObjects, p.purgedBytes) = trash.purge(olderThan: config.trashGrace, now: now, dryRun: options.dryRun)

        // 3. Refuse what would be unsafe.
        var single = config
        single.clients = [client]
        let report = Checker.run(config: single, root: root, deep: false, now: now).clients.first
        if let report, !options.force {
            // A client that stopped uploading (stale) is no reason to keep everything: keep_last keeps its newest.
            let failures = report.findings.filter { $0.level == .fail && !$0.message.hasPrefix("stale:") }.map(\.message)
            let drop = report.findings.filter { $0.message.contains("a sudden drop") }.map(\.message)
            if !failures.isEmpty || !drop.isEmpty {
                throw StoreError(.integrity, "its check reports: \((failures + drop).prefix(3).joined(separator: "; ")). Repair that first (fbk check --root \(root)), or prune anyway with --force")
            }
        }
        let recent = catalogs.filter { now.timeIntervalSince($0.1.received ?? now) <= policy.keepWithin }
        let newest = catalogs.max { ($0.1.received ?? .distantPast) < ($1.1.received ?? .distantPast) }
        guard let newest else {
            p.status = options.dryRun ? "planned" : "pruned"
            p.reason = "no snapshot signed by this client: nothing removed"
            return
        }
        let horizons = (recent.isEmpty ? [newest] : recent).map { $0.0.reuseHorizon }
        if !options.force {
            if horizons.contains(where: { $0 == nil }) {
                throw StoreError(.config, "its snapshots state no reuse horizon (written by an fbk from before retention, which reuses packs of any age): upgrade fbk on the client and let it take a snapshot, or prune anyway with --force")
            }
            if let h = horizons.compactMap({ $0 }).max(), !policy.protects(horizon: h) {
                throw StoreError(.config, "its reuse horizon is \(h / 86_400) days; keep_within (\(Int(policy.keepWithin / 86_400)) days) must be at least that plus spool_delay (\(Int(policy.spoolDelay / 86_400)) days): raise keep_within in the check configuration, or lower reuse_horizon on the client")
            }
        }

        // 4. What the policy keeps.
        let received = catalogs.map { Received(id: $0.0.snapshot, received: $0.1.received ?? now) }
        let kept = KeepRules.kept(received, policy: policy, now: now)
        p.kept = Dictionary(uniqueKeysWithValues: kept.map { ($0.key.text, $0.value) })
        let keptCatalogs = catalogs.filter { kept[$0.0.snapshot] != nil }
        let removedCatalogs = catalogs.filter { kept[$0.0.snapshot] == nil }
        var keep = Set<String>()
        for (c, _) in keptCatalogs {
            keep.insert(ObjectName.catalog(c.snapshot).path)
            keep.insert(c.record.path)
            if let l = c.listing { keep.insert(l.path) }
            for o in c.packs { keep.insert(o.path) }
        }
        let signedSnapshots = Set(catalogs.map(\.0.snapshot))
        let retired = retiredCatalogs(client, trash: trash, warnings: &p.warnings)
        let retiredSnapshots = Set(retired.map(\.0.snapshot))
        let old = { (o: StoredObject) in now.timeIntervalSince(o.received ?? now) > policy.keepWithin }
        var remove = Set<String>()
        for (path, o) in all where !keep.contains(path) {
            guard let name = ObjectName(parsing: path) else { continue }   // strangers are the check's to report
            switch name.kind {
            case .pack:
                if old(o) { remove.insert(path) }
            case .catalog:
                if let id = name.snapshotID, signedSnapshots.contains(id) { remove.insert(path) }
            case .record, .listing:
                // Of a removed snapshot, or of one whose catalog never came (an interrupted run) long ago.
                // A retired snapshot's listing goes only when no surviving pack needs it (below).
                if let id = name.snapshotID, !retiredSnapshots.contains(id), signedSnapshots.contains(id) || old(o) { remove.insert(path) }
            default:
                continue   // the escrow (keys/) is never removed
            }
        }

        // A listing stays while a surviving pack was first listed by its
        // snapshot: restores and index rebuilds find chunks through it.
        let survives = { (path: String) in all[path] != nil && !remove.contains(path) }
        var firstLister: [String: (Date, SnapshotID)] = [:]
        for (c, received) in catalogs.map({ ($0.0, $0.1.received ?? now) }) + retired {
            for o in c.packs where (firstLister[o.path].map { (received, c.snapshot) < $0 } ?? true) {
                firstLister[o.path] = (received, c.snapshot)
            }
        }
        var listingNeeded = Set<SnapshotID>()
        for (path, (_, id)) in firstLister where survives(path) { listingNeeded.insert(id) }
        for (c, _) in removedCatalogs where listingNeeded.contains(c.snapshot) {
            if let l = c.listing { remove.remove(l.path) }
        }
        p.removedSnapshots = removedCatalogs.map(\.0.snapshot.text).sorted()
        p.removedObjects = remove.sorted()
        p.removedBytes = remove.reduce(0) { $0 + (all[$1]?.size ?? 0) }
        p.keptBytes = all.values.filter { !remove.contains($0.path) }.reduce(0) { $0 + $1.size }
        var retiredDone: [Catalog] = []
        for (c, _) in retired where !listingNeeded.contains(c.snapshot) {
            if let l = c.listing, all[l.path] != nil {
                p.removedObjects.append(l.path)
                p.removedBytes += all[l.path]!.size
            }
            retiredDone.append(c)
        }
        p.status = options.dryRun ? "planned" : "pruned"
        guard !options.dryRun else { return }

        // 5. Into the trash, commit markers first.
        let run = Timestamp.compactTime(now)
        let order: [ObjectKind] = [.catalog, .record, .listing, .pack]
        for kind in order {
            for path in remove.sorted() where ObjectName(parsing: path)?.kind == kind {
                if kind == .catalog, let id = ObjectName(parsing: path)?.snapshotID, listingNeeded.contains(id) {
                    try trash.retire(path)
                } else {
                    try trash.remove(path, run: run)
                }
            }
        }
        for c in retiredDone {
            if let l = c.listing, all[l.path] != nil { try trash.remove(l.path, run: run) }
            try trash.discardRetired(ObjectName.catalog(c.snapshot).path, run: run)
        }
    }

    // MARK: Devices

    /// A device's blob sets (FORMAT.md 12) under the same policy, per blob
    /// kind, by receipt time: a set (one object, or parts and their
    /// manifest) is kept or removed whole. An incremental (`NAME-incr`)
    /// keeps every set its restore needs: the `NAME-full` before it and
    /// the incrementals between, in the device's own time order. A set
    /// that never completed goes once older than keep_within.
    static func pruneDevice(_ client: EnrolledClient, policy: RetentionPolicy, config: CheckConfig, root: String,
                            options: Options, now: Date, into p: inout PrunePlan.ClientPlan) throws(StoreError) {
        let backend = try DirectoryBackend(storageRoot: root, client: client.name)
        let trash = Trash(storageRoot: root, client: client.name)
        let all = try inventory(backend)
        var single = config
        single.clients = [client]
        if !options.force, let report = Checker.run(config: single, root: root, deep: false, now: now).clients.first {
            let failures = report.findings.filter { $0.level == .fail && !$0.message.hasPrefix("stale") }.map(\.message)
            if !failures.isEmpty {
                throw StoreError(.integrity, "its check reports: \(failures.prefix(3).joined(separator: "; ")). Repair that first (fbk check --root \(root)), or prune anyway with --force")
            }
        }
        struct BlobSet { var kind: String; var time: String; var objects: [StoredObject] = []; var complete = false }
        var sets: [String: BlobSet] = [:]   // "KIND TIME" → set
        for (path, o) in all {
            guard let blob = ObjectName(parsing: path)?.blob else { continue }
            let key = blob.kind + " " + blob.time
            sets[key, default: BlobSet(kind: blob.kind, time: blob.time)].objects.append(o)
            if blob.part == nil { sets[key]!.complete = true }   // a single object, or the manifest (uploaded last)
        }
        let complete = sets.filter { $0.value.complete }
        let received = { (s: BlobSet) in s.objects.compactMap(\.received).max() ?? now }
        var keep = Set<String>()
        for kind in Set(complete.values.map(\.kind)) {
            let ofKind = complete.filter { $0.value.kind == kind }
            // Receipt-time policy; IDs stand in for snapshot IDs (unique per set).
            var ids: [SnapshotID: String] = [:]
            var received_: [Received] = []
            for (key, set) in ofKind {
                let id = SnapshotID(String(format: "19700101T000000Z-%016llx", UInt64(ids.count)))!
                ids[id] = key
                received_.append(Received(id: id, received: received(set)))
            }
            for id in KeepRules.kept(received_, policy: policy, now: now).keys { keep.insert(ids[id]!) }
        }
        // Incrementals keep their chain back to the full they apply to.
        let byTime = complete.sorted { $0.value.time < $1.value.time }
        for (key, set) in byTime where keep.contains(key) && set.kind.hasSuffix("-incr") {
            let base = String(set.kind.dropLast("-incr".count))
            for (k, earlier) in byTime.reversed() where earlier.time < set.time {
                if earlier.kind == base + "-incr" { keep.insert(k) }
                if earlier.kind == base + "-full" { keep.insert(k); break }
            }
        }
        var remove: [String] = []
        for (key, set) in sets where !keep.contains(key) {
            // A set that never completed may still be arriving: only once it is old.
            if !set.complete && now.timeIntervalSince(received(set)) <= policy.keepWithin { continue }
            if set.complete { p.removedSnapshots.append("\(set.kind) \(set.time)") }
            remove += set.objects.map(\.path)
        }
        remove.sort()
        p.kept = Dictionary(uniqueKeysWithValues: keep.map { ($0, "kept") })
        p.removedSnapshots.sort()
        p.removedObjects = remove
        p.removedBytes = remove.reduce(0) { $0 + (all[$1]?.size ?? 0) }
        p.keptBytes = all.values.reduce(0) { $0 + $1.size } - p.removedBytes
        (p.purgedObjects, p.purgedBytes) = trash.purge(olderThan: config.trashGrace, now: now, dryRun: options.dryRun)
        p.status = options.dryRun ? "planned" : "pruned"
        guard !options.dryRun else { return }
        let run = Timestamp.compactTime(now)
        // Manifests first: a set without its manifest is incomplete, never a wrong restore.
        for path in remove where path.hasSuffix(".manifest") { try trash.remove(path, run: run) }
        for path in remove where !path.hasSuffix(".manifest") { try trash.remove(path, run: run) }
    }

    private static func inventory(_ backend: DirectoryBackend) throws(StoreError) -> [String: StoredObject] {
        do {
            return Dictionary(try backend.inventory().objects.map { ($0.path, $0) }, uniquingKeysWith: { a, _ in a })
        } catch {
            throw StoreError(.io, "cannot list \(backend.location): \(error.message)", cause: error)
        }
    }

    /// The client's catalogs that verify with its enrolled key and name
    /// themselves, with their receipt times. Anything else is left for the
    /// check to report; it protects nothing and is removed by nothing.
    static func verifiedCatalogs(_ client: EnrolledClient, backend: DirectoryBackend, all: [String: StoredObject],
                                 warnings: inout [String]) -> [(Catalog, StoredObject)] {
        var out: [(Catalog, StoredObject)] = []
        for (path, o) in all.sorted(by: { $0.key < $1.key }) where ObjectName(parsing: path)?.kind == .catalog {
            guard let c = verified(path, client: client, read: { () throws(StoreError) in
                do throws(BackendError) { return try backend.read(path, limit: ObjectLimits.document, what: "catalog") } catch { throw error.storeError }
            }) else {
                warnings.append("\(path) does not verify with the enrolled key: left in place (fbk check reports it)")
                continue
            }
            out.append((c, o))
        }
        return out
    }

    /// Catalogs prune moved aside while their listings are kept.
    static func retiredCatalogs(_ client: EnrolledClient, trash: Trash, warnings: inout [String]) -> [(Catalog, Date)] {
        let directory = trash.retired + "/snapshots"
        var out: [(Catalog, Date)] = []
        for name in ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).sorted() {
            let path = "snapshots/" + name
            let file = directory + "/" + name
            guard ObjectName(parsing: path)?.kind == .catalog,
                  let c = verified(path, client: client, read: { () throws(StoreError) in try readBounded(file, limit: ObjectLimits.document, what: "catalog") })
            else { continue }
            var st = stat()
            let received = lstat(file, &st) == 0 ? Date(timeIntervalSince1970: TimeInterval(st.st_mtim.tv_sec)) : Date()
            out.append((c, received))
        }
        return out
    }

    private static func verified(_ path: String, client: EnrolledClient, read: () throws(StoreError) -> [UInt8]) -> Catalog? {
        guard let key = client.signingKey, let bytes = try? read(),
              let (c, _) = try? SignedDocument.decode(Catalog.self, from: bytes, name: path, verifyingKey: key),
              c.client == client.name, ObjectName.catalog(c.snapshot).path == path else { return nil }
        return c
    }
}
