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
import FoundationEssentials
import Glibc
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
        /// Objects prune would remove that the storage keeps locked (S3 Object Lock): `PATH until TIME`.
        public var locked: [String] = []
        public var warnings: [String] = []

        enum CodingKeys: String, CodingKey {
            case client, status, reason, kept, warnings, locked
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
    public var version = fbkVersion

    enum CodingKeys: String, CodingKey {
        case root, at, clients, version
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
            if !c.locked.isEmpty {
                lines.append("  under Object Lock, left until it expires: \(c.locked.count) objects (\(c.locked.prefix(3).joined(separator: ", "))\(c.locked.count > 3 ? ", …" : ""))")
            }
            for s in c.removedSnapshots { lines.append("  \(dryRun ? "would remove" : "removed") snapshot \(s)") }
            for w in c.warnings { lines.append("  warning: \(w)") }
        }
        return lines.map(\.terminalSafe).joined(separator: "\n")
    }
}

/// Where prune works: a storage root on this machine, or a WebDAV server
/// through an account of deploy/nginx/fbk-prune.conf.
public enum PruneTarget: Sendable, CustomStringConvertible {
    case storageRoot(String)
    case webDAV(url: String, user: String?, passwordFile: String?)
    /// `s3://BUCKET/PREFIX/` with credentials of deploy/s3/prune-policy.json.
    case s3(url: String, settings: S3Settings)

    public var description: String {
        switch self {
        case .storageRoot(let root): root
        case .webDAV(let url, _, _), .s3(let url, _): url
        }
    }

    /// The client's directory and its trash directory.
    func open(_ client: String) throws(StoreError) -> (storage: any RemovableStorage, area: any RemovableStorage) {
        switch self {
        case .storageRoot(let given):
            let root = URL(fileURLWithPath: given).standardizedFileURL.path
            return (try DirectoryBackend(storageRoot: root, client: client),
                    try DirectoryBackend(url: "file://" + root + "/" + Trash.directoryName + "/" + client + "/"))
        case .webDAV(let url, let user, let passwordFile):
            let base = url.hasSuffix("/") ? url : url + "/"
            return (try WebDAVBackend(storageRoot: base, client: client, user: user, passwordFile: passwordFile),
                    try WebDAVBackend(directory: base + Trash.directoryName + "/" + client + "/", user: user, passwordFile: passwordFile))
        case .s3(let url, let settings):
            let base = url.hasSuffix("/") ? url : url + "/"
            return (try S3Backend(storageRoot: base, client: client, settings: settings),
                    try S3Backend(directory: base + Trash.directoryName + "/" + client + "/", settings: settings))
        }
    }

    /// How to run the check of this storage, for messages.
    var checkCommand: String {
        switch self {
        case .storageRoot(let root): "fbk check --root \(root)"
        case .webDAV: "fbk check on the mirror's storage root"
        case .s3(let url, _): "fbk check --url \(url)"
        }
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

    public static func run(config: CheckConfig, target: PruneTarget, options: Options, now: Date = WallClock.now()) -> PrunePlan {
        var plan = PrunePlan(root: target.description, dryRun: options.dryRun, at: Timestamp.rfc3339(now))
        for client in config.clients where options.clients?.contains(client.name) ?? true {
            var p = PrunePlan.ClientPlan(client: client.name, status: "skipped")
            guard let policy = client.retention else {
                p.reason = "no retention policy in the check configuration: nothing is removed"
                plan.clients.append(p)
                continue
            }
            do {
                if client.kind == .fbk {
                    try prune(client, policy: policy, config: config, target: target, options: options, now: now, into: &p)
                } else if case .storageRoot(let root) = target {
                    try pruneDevice(client, policy: policy, config: config, root: root, options: options, now: now, into: &p)
                } else {
                    p.reason = "device blobs are pruned on the storage root (fbk prune --root), where their sets are checked first"
                }
            } catch {
                p.status = "refused"
                p.reason = error.message
            }
            plan.clients.append(p)
        }
        return plan
    }

    static func prune(_ client: EnrolledClient, policy: RetentionPolicy, config: CheckConfig, target: PruneTarget,
                      options: Options, now: Date, into p: inout PrunePlan.ClientPlan) throws(StoreError) {
        let (backend, area) = try target.open(client.name)
        let trash = Trash(storage: backend, area: area)
        let run = Timestamp.compactTime(now)
        let all = try inventory(backend)
        // Catalogs are read one at a time into compact summaries: a
        // thousand catalogs of a thousand packs each stay a few MiB.
        let table = PackTable()
        var failures: [String] = []
        var catalogs = summaries(client, backend: backend, all: all, table: table, failures: &failures, warnings: &p.warnings)

        // 1. A verified catalog naming something in the trash gets it back.
        var restored: [String: StoredObject] = [:]   // path → where it lies in the trash
        for c in catalogs {
            for path in c.packs.map({ table.paths[Int($0)] }) + [c.record.path] + (c.listing.map { [$0.path] } ?? [])
            where all[path] == nil && restored[path] == nil {
                guard let trashed = try trash.find(path) else { continue }
                restored[path] = trashed
                p.restoredFromTrash.append(path)
                p.warnings.append("snapshot \(c.snapshot) arrived after prune removed \(path), which it needs: \(options.dryRun ? "it would be put back" : "put back from the trash")")
                if !options.dryRun { try trash.restore(trashed.path, as: path) }
            }
        }
        if !options.dryRun { try trash.finish(run: run) }
        var present = all
        if !restored.isEmpty {
            if options.dryRun {
                for (path, trashed) in restored { present[path] = StoredObject(path: path, size: trashed.size, received: trashed.received) }
            } else {
                present = try inventory(backend)
            }
            // The same catalogs again, against what is present now; their warnings were given above.
            failures = []
            var again: [String] = []
            catalogs = summaries(client, backend: backend, all: present, table: table, failures: &failures, warnings: &again)
        }

        // 2. Trash runs past the grace period go for good.
        (p.purgedObjects, p.purgedBytes) = try trash.purge(olderThan: config.trashGrace, now: now, dryRun: options.dryRun, locked: &p.locked)

        // 3. Refuse what would be unsafe: the check's failures that concern
        //    data (missing or truncated objects, catalogs not signed by the
        //    client) and a sudden drop; a stale client is not refused.
        let byReceipt = catalogs.sorted { ($0.received, $0.snapshot) < ($1.received, $1.snapshot) }
        if byReceipt.count >= 2 {
            let last = byReceipt[byReceipt.count - 1], before = byReceipt[byReceipt.count - 2]
            if before.packs.count >= 10 && last.packs.count * 10 < before.packs.count {
                failures.append("snapshot \(last.snapshot) needs \(last.packs.count) packs, the one before \(before.packs.count): a sudden drop")
            }
        }
        if !options.force && !failures.isEmpty {
            throw StoreError(.integrity, "its check reports: \(failures.prefix(3).joined(separator: "; "))\(failures.count > 3 ? "; and \(failures.count - 3) more" : ""). Repair that first (\(target.checkCommand)), or prune anyway with --force")
        }
        guard let newest = byReceipt.last else {
            p.status = options.dryRun ? "planned" : "pruned"
            p.reason = "no snapshot signed by this client: nothing removed"
            return
        }
        let recent = catalogs.filter { now.timeIntervalSince($0.received) <= policy.keepWithin }
        let horizons = (recent.isEmpty ? [newest] : recent).map(\.reuseHorizon)
        if !options.force {
            if horizons.contains(where: { $0 == nil }) {
                throw StoreError(.config, "its snapshots state no reuse horizon (written by an fbk from before retention, which reuses packs of any age): upgrade fbk on the client and let it take a snapshot, or prune anyway with --force")
            }
            if let h = horizons.compactMap({ $0 }).max(), !policy.protects(horizon: h) {
                throw StoreError(.config, "its reuse horizon is \(h / 86_400) days; keep_within (\(Int(policy.keepWithin / 86_400)) days) must be at least that plus spool_delay (\(Int(policy.spoolDelay / 86_400)) days): raise keep_within in the check configuration, or lower reuse_horizon on the client")
            }
        }

        // 4. What the policy keeps, and snapshots the storage will not let go yet (Object Lock on the catalog).
        var kept = KeepRules.kept(catalogs.map { Received(id: $0.snapshot, received: $0.received) }, policy: policy, now: now)
        for c in catalogs where kept[c.snapshot] == nil {
            if let until = try lockedUntil(c.path, backend) {
                kept[c.snapshot] = "under Object Lock until \(Timestamp.rfc3339(until))"
                p.locked.append("\(c.path) until \(Timestamp.rfc3339(until))")
            }
        }
        p.kept = Dictionary(uniqueKeysWithValues: kept.map { ($0.key.text, $0.value) })
        // Read before the table is sized: retired catalogs may name packs no present one does.
        let retired = try retiredSummaries(client, trash: trash, table: table)
        let retiredSnapshots = Set(retired.map(\.snapshot))
        var keptPack = [Bool](repeating: false, count: table.paths.count)
        var keep = Set<String>()
        for c in catalogs where kept[c.snapshot] != nil {
            keep.insert(c.path)
            keep.insert(c.record.path)
            if let l = c.listing { keep.insert(l.path) }
            for i in c.packs { keptPack[Int(i)] = true }
        }
        let signedSnapshots = Set(catalogs.map(\.snapshot))
        let old = { (o: StoredObject) in now.timeIntervalSince(o.received ?? now) > policy.keepWithin }
        var remove = Set<String>()
        for (path, o) in present where !keep.contains(path) {
            guard let name = ObjectName(parsing: path) else { continue }   // strangers are the check's to report
            switch name.kind {
            case .pack:
                if old(o) && !(table.index[path].map { keptPack[Int($0)] } ?? false) { remove.insert(path) }
            case .catalog:
                if let id = name.snapshotID, signedSnapshots.contains(id) { remove.insert(path) }
            case .record, .listing:
                // Of a removed snapshot, or of one whose catalog never came (an interrupted run) long ago;
                // a retired snapshot's listing goes only when no surviving pack needs it (below).
                if let id = name.snapshotID, !retiredSnapshots.contains(id), signedSnapshots.contains(id) || old(o) { remove.insert(path) }
            default:
                continue   // the escrows (keys/) are never removed
            }
        }

        // A listing stays while a surviving pack was first listed by its
        // snapshot: restores and index rebuilds find chunks through it.
        var firstLister = [Int32](repeating: -1, count: table.paths.count)
        let listers = (catalogs + retired).sorted { ($0.received, $0.snapshot) < ($1.received, $1.snapshot) }
        for (n, c) in listers.enumerated() {
            for i in c.packs where firstLister[Int(i)] < 0 { firstLister[Int(i)] = Int32(n) }
        }
        var listingNeeded = Set<SnapshotID>()
        for (i, lister) in firstLister.enumerated() where lister >= 0 {
            let path = table.paths[i]
            if present[path] != nil && !remove.contains(path) { listingNeeded.insert(listers[Int(lister)].snapshot) }
        }
        let removedCatalogs = catalogs.filter { kept[$0.snapshot] == nil }
        for c in removedCatalogs where listingNeeded.contains(c.snapshot) {
            if let l = c.listing { remove.remove(l.path) }
        }
        p.removedSnapshots = removedCatalogs.map(\.snapshot.text).sorted()
        var retiredDone: [CatalogSummary] = []
        for c in retired where !listingNeeded.contains(c.snapshot) {
            if let l = c.listing, present[l.path] != nil { remove.insert(l.path) }
            retiredDone.append(c)
        }
        // What the storage still locks stays (it is harmless: no kept snapshot's restore depends on its absence).
        for path in remove.sorted() where ObjectName(parsing: path)?.kind != .catalog {
            if let until = try lockedUntil(path, backend) {
                remove.remove(path)
                p.locked.append("\(path) until \(Timestamp.rfc3339(until))")
            }
        }
        p.removedObjects = remove.sorted()
        p.removedBytes = remove.reduce(0) { $0 + (present[$1]?.size ?? 0) }
        p.keptBytes = present.values.reduce(0) { $0 + $1.size } - p.removedBytes
        p.status = options.dryRun ? "planned" : "pruned"
        guard !options.dryRun else { return }

        // 5. Into the trash, commit markers first; what goes is recorded first.
        try trash.note(removing: p.removedObjects, run: run)
        for kind in [ObjectKind.catalog, .record, .listing, .pack] {
            for path in p.removedObjects where ObjectName(parsing: path)?.kind == kind {
                if kind == .catalog, let id = ObjectName(parsing: path)?.snapshotID, listingNeeded.contains(id) {
                    try trash.retire(path)
                } else {
                    try trash.remove(path, run: run)
                }
            }
        }
        for c in retiredDone { try trash.discardRetired(c.path, run: run) }
    }

    /// Pack paths as small integers, so a thousand catalogs of a thousand
    /// packs each cost four bytes an entry.
    final class PackTable {
        var index: [String: Int32] = [:]
        var paths: [String] = []

        func id(_ path: String) -> Int32 {
            if let i = index[path] { return i }
            let i = Int32(paths.count)
            index[path] = i
            paths.append(path)
            return i
        }
    }

    /// What prune needs of a verified catalog.
    struct CatalogSummary {
        let snapshot: SnapshotID
        /// The catalog's own path, and when this server received it.
        let path: String
        let received: Date
        let record: Catalog.Object
        let listing: Catalog.Object?
        let reuseHorizon: Int?
        let packs: [Int32]
    }

    /// The client's catalogs that verify with its enrolled key and name
    /// themselves, read one at a time. What the check would fail on
    /// (objects missing or of another size, catalogs someone else signed)
    /// goes to `failures`.
    static func summaries(_ client: EnrolledClient, backend: any Backend, all: [String: StoredObject], table: PackTable,
                          failures: inout [String], warnings: inout [String]) -> [CatalogSummary] {
        var out: [CatalogSummary] = []
        for (path, o) in all.sorted(by: { $0.key < $1.key }) where ObjectName(parsing: path)?.kind == .catalog {
            var problems: [String] = []
            let summary = summary(path, client: client, received: o.received ?? Date(), table: table, read: { () throws(StoreError) in
                do throws(BackendError) { return try backend.read(path, limit: ObjectLimits.document, what: "catalog") } catch { throw error.storeError }
            }, check: { object in
                guard let f = all[object.path] else { problems.append("\(object.path) missing"); return }
                if f.size != object.size { problems.append("\(object.path) is \(f.size) bytes, the catalog says \(object.size)") }
            })
            guard let summary else {
                failures.append("\(path) is not signed by \(client.name)'s enrolled key")
                warnings.append("\(path) does not verify with the enrolled key: left in place (fbk check reports it)")
                continue
            }
            if !problems.isEmpty {
                failures.append("snapshot \(summary.snapshot) is incomplete: " + problems.prefix(3).joined(separator: "; "))
            }
            out.append(summary)
        }
        return out
    }

    /// Catalogs prune moved aside while their listings are kept.
    static func retiredSummaries(_ client: EnrolledClient, trash: Trash, table: PackTable) throws(StoreError) -> [CatalogSummary] {
        try trash.retired().compactMap { r in
            summary(r.path, client: client, received: r.received, table: table, read: { () throws(StoreError) in r.bytes }, check: { _ in })
        }
    }

    private static func summary(_ path: String, client: EnrolledClient, received: Date, table: PackTable,
                                read: () throws(StoreError) -> [UInt8], check: (Catalog.Object) -> Void) -> CatalogSummary? {
        guard let key = client.signingKey, let bytes = try? read() else { return nil }
        var packs: [Int32] = []
        guard let c = try? SignedDocument.decodeCatalog(from: bytes, name: path, verifyingKey: key, eachPack: { o in
            packs.append(table.id(o.path))
            check(o)
        }), c.client == client.name, ObjectName.catalog(c.snapshot).path == path else { return nil }
        check(c.record)
        if let l = c.listing { check(l) }
        return CatalogSummary(snapshot: c.snapshot, path: path, received: received, record: c.record, listing: c.listing,
                              reuseHorizon: c.reuseHorizon, packs: packs)
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
        let (backend, area) = try PruneTarget.storageRoot(root).open(client.name)
        let trash = Trash(storage: backend, area: area)
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
            let ofKind = complete.filter { $0.value.kind == kind }.map { Received(id: $0.key, received: received($0.value)) }
            keep.formUnion(KeepRules.kept(ofKind, policy: policy, now: now).keys)
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
        (p.purgedObjects, p.purgedBytes) = try trash.purge(olderThan: config.trashGrace, now: now, dryRun: options.dryRun, locked: &p.locked)
        p.status = options.dryRun ? "planned" : "pruned"
        guard !options.dryRun else { return }
        let run = Timestamp.compactTime(now)
        try trash.note(removing: remove, run: run)
        // Manifests first: a set without its manifest is incomplete, never a wrong restore.
        for path in remove where path.hasSuffix(".manifest") { try trash.remove(path, run: run) }
        for path in remove where !path.hasSuffix(".manifest") { try trash.remove(path, run: run) }
    }

    /// Until when the storage keeps `path` locked, if it does.
    private static func lockedUntil(_ path: String, _ storage: any RemovableStorage) throws(StoreError) -> Date? {
        do {
            return try storage.retainedUntil(path)
        } catch {
            throw StoreError(.io, "cannot learn whether \(path) is locked: \(error.message)", cause: error)
        }
    }

    private static func inventory(_ backend: any Backend) throws(StoreError) -> [String: StoredObject] {
        do {
            return Dictionary(try backend.inventory().objects.map { ($0.path, $0) }, uniquingKeysWith: { a, _ in a })
        } catch {
            throw StoreError(.io, "cannot list \(backend.location): \(error.message)", cause: error)
        }
    }
}
