// What a snapshot run did, for people (text), machines (JSON) and the journal.

import FoundationEssentials
import Glibc
import Platform
import Chunker
import Seal

/// The outcome of `fbk snapshot`.
public struct SnapshotSummary: Encodable, Sendable {
    public struct MirrorState: Encodable, Sendable {
        public var url: String
        public var uploadedBytes: Int
        public var uploadedObjects: Int
        /// Objects this snapshot needs that the mirror does not have yet.
        public var missingObjects: Int
        /// Objects still in the local spool for this mirror (delivered on the next run).
        public var spooled: Int
        public var error: String?
        /// The mirror refused this run's uploads for a reason retrying cannot
        /// fix (401, 403, a wrong directory or scheme): misconfigured, not down.
        public var refusing = false

        /// `ok`, `behind` (down now: what it lacks is delivered later) or
        /// `misconfigured` (it refuses: nothing reaches it until fixed).
        public var state: String {
            refusing ? "misconfigured" : (missingObjects > 0 || spooled > 0 || error != nil) ? "behind" : "ok"
        }

        enum CodingKeys: String, CodingKey {
            case url, error, spooled, refusing, state
            case uploadedBytes = "uploaded_bytes"
            case uploadedObjects = "uploaded_objects"
            case missingObjects = "missing_objects"
        }

        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(url, forKey: .url)
            try c.encodeIfPresent(error, forKey: .error)
            try c.encode(spooled, forKey: .spooled)
            try c.encode(refusing, forKey: .refusing)
            try c.encode(state, forKey: .state)
            try c.encode(uploadedBytes, forKey: .uploadedBytes)
            try c.encode(uploadedObjects, forKey: .uploadedObjects)
            try c.encode(missingObjects, forKey: .missingObjects)
        }
    }

    public init() {}

    public var snapshot: String?
    /// `fbk snapshot --dry-run`: nothing was uploaded or recorded.
    public var dryRun = false
    public var files = 0
    public var directories = 0
    public var otherEntries = 0
    /// Regular files left out by `exclude_larger_than`.
    public var excludedLarge = 0
    public var bytesScanned: UInt64 = 0
    public var bytesRead: UInt64 = 0
    public var filesFromCache = 0
    public var newChunks = 0
    public var newBytes: UInt64 = 0
    public var storedBytes: UInt64 = 0
    public var packs = 0
    public var spoolDelivered = 0
    public var seconds = 0.0
    public var warnings: [String] = []
    public var unreadable = 0
    /// Configured paths that do not exist: the snapshot lacks them.
    public var missingPaths: [String] = []
    public var mirrors: [MirrorState] = []
    public var safeMirrors = 0
    public var requiredMirrors = 1
    /// Chunks stored again because their only pack was past the reuse
    /// horizon or not sealed to every current recipient (FORMAT.md, "Retention").
    public var renewedChunks = 0
    public var renewedBytes: UInt64 = 0
    /// The oldest reference a reused pack had (RFC 3339): packs no snapshot
    /// needed since were not deduplicated against.
    public var reuseSince: String?
    /// Partly dead packs this run stopped reusing (their live chunks are stored again as met).
    public var packsMarkedForRenewal = 0
    public var bytesMarkedForRenewal = 0

    /// Bytes scanned per byte newly stored (compressed), 0 when nothing was new.
    public var dedupRatio: Double { storedBytes == 0 ? 0 : Double(bytesScanned) / Double(storedBytes) }
    public var mirrorsBehind: [String] { mirrors.filter { $0.missingObjects > 0 || $0.spooled > 0 }.map(\.url) }

    enum CodingKeys: String, CodingKey {
        case snapshot, files, directories, packs, seconds, warnings, unreadable, mirrors, version
        case otherEntries = "other_entries"
        case dryRun = "dry_run"
        case excludedLarge = "excluded_large_files"
        case bytesScanned = "bytes_scanned"
        case bytesRead = "bytes_read"
        case filesFromCache = "files_from_cache"
        case newChunks = "new_chunks"
        case newBytes = "new_bytes"
        case storedBytes = "stored_bytes"
        case spoolDelivered = "spool_delivered"
        case safeMirrors = "safe_mirrors"
        case requiredMirrors = "required_mirrors"
        case dedupRatio = "dedup_ratio"
        case mirrorsBehind = "mirrors_behind"
        case missingPaths = "missing_paths"
        case exitStatus = "exit_status"
        case renewedChunks = "renewed_chunks"
        case renewedBytes = "renewed_bytes"
        case reuseSince = "reuse_since"
        case packsMarkedForRenewal = "packs_marked_for_renewal"
        case bytesMarkedForRenewal = "bytes_marked_for_renewal"
    }

    /// What `fbk snapshot` exits with once the snapshot is stored (README,
    /// "Exit status"): 5 a mirror refuses uploads (misconfigured: fix it),
    /// 3 files or configured paths could not be read, 4 a mirror is behind
    /// (down now; delivered on a later run), 0 all well.
    public var exitStatus: Int32 {
        if mirrors.contains(where: \.refusing) { return 5 }
        if unreadable > 0 || !missingPaths.isEmpty { return 3 }
        if !mirrorsBehind.isEmpty { return 4 }
        return 0
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(fbkVersion, forKey: .version)
        try c.encode(snapshot, forKey: .snapshot)
        if dryRun { try c.encode(dryRun, forKey: .dryRun) }
        try c.encode(files, forKey: .files)
        try c.encode(directories, forKey: .directories)
        try c.encode(otherEntries, forKey: .otherEntries)
        try c.encode(excludedLarge, forKey: .excludedLarge)
        try c.encode(bytesScanned, forKey: .bytesScanned)
        try c.encode(bytesRead, forKey: .bytesRead)
        try c.encode(filesFromCache, forKey: .filesFromCache)
        try c.encode(newChunks, forKey: .newChunks)
        try c.encode(newBytes, forKey: .newBytes)
        try c.encode(storedBytes, forKey: .storedBytes)
        try c.encode(packs, forKey: .packs)
        try c.encode(spoolDelivered, forKey: .spoolDelivered)
        try c.encode(seconds, forKey: .seconds)
        try c.encode(warnings, forKey: .warnings)
        try c.encode(unreadable, forKey: .unreadable)
        try c.encode(mirrors, forKey: .mirrors)
        try c.encode(safeMirrors, forKey: .safeMirrors)
        try c.encode(requiredMirrors, forKey: .requiredMirrors)
        try c.encode((dedupRatio * 100).rounded() / 100, forKey: .dedupRatio)
        try c.encode(mirrorsBehind, forKey: .mirrorsBehind)
        try c.encode(missingPaths, forKey: .missingPaths)
        try c.encode(exitStatus, forKey: .exitStatus)
        try c.encode(renewedChunks, forKey: .renewedChunks)
        try c.encode(renewedBytes, forKey: .renewedBytes)
        try c.encodeIfPresent(reuseSince, forKey: .reuseSince)
        try c.encode(packsMarkedForRenewal, forKey: .packsMarkedForRenewal)
        try c.encode(bytesMarkedForRenewal, forKey: .bytesMarkedForRenewal)
    }

    public func json() -> String {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try! e.encode(self), as: UTF8.self)
    }

    /// Bytes in binary units, e.g. `0 B`, `812 B`, `457.4 MiB`.
    public static func binarySize(_ bytes: UInt64) -> String {
        guard bytes >= 1024 else { return "\(bytes) B" }
        var value = Double(bytes)
        var unit = 0
        let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
        while value >= 1024 && unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return String(cFormat: "%.1f", value) + " " + units[unit]
    }

    public func text() -> String {
        func size(_ b: UInt64) -> String { Self.binarySize(b) }
        var lines: [String] = []
        lines.append("snapshot \(snapshot ?? "(none)"): \(files) files, \(directories) directories, \(size(bytesScanned)) scanned, \(size(bytesRead)) read, \(filesFromCache) files unchanged")
        lines.append("new: \(newChunks) chunks, \(size(newBytes)) before compression, \(size(storedBytes)) stored in \(packs) packs; \(String(cFormat: "%.1f", seconds)) s")
        if renewedChunks > 0 {
            lines.append("renewed: \(renewedChunks) chunks, \(size(renewedBytes)) stored again (their packs were needed by no snapshot since \(reuseSince ?? "?"), or sealed to other certificates)")
        }
        if packsMarkedForRenewal > 0 {
            lines.append("renewal: \(packsMarkedForRenewal) mostly dead packs no longer reused; their \(size(UInt64(bytesMarkedForRenewal))) still in use are stored again as files are read")
        }
        for m in mirrors {
            var line = "mirror \(m.url): \(m.uploadedObjects) objects, \(size(UInt64(m.uploadedBytes))) uploaded"
            if m.missingObjects > 0 { line += "; BEHIND by \(m.missingObjects) objects" }
            if m.spooled > 0 { line += "; \(m.spooled) objects spooled for the next run" }
            if let e = m.error {
                line += m.refusing ? "; REFUSES uploads, misconfigured (nothing reaches it until fixed): \(e)"
                                   : "; DOWN now (what it lacks is delivered by a later run): \(e)"
            }
            lines.append(line)
        }
        lines.append("safe on \(safeMirrors) of \(mirrors.count) mirrors (required: \(requiredMirrors))")
        for p in missingPaths { lines.append("MISSING: configured path \(p.terminalSafe) does not exist; the snapshot lacks it") }
        for w in warnings.prefix(50) { lines.append("warning: \(w)") }
        if warnings.count > 50 { lines.append("warning: … and \(warnings.count - 50) more") }
        return lines.joined(separator: "\n")
    }
}

/// Live counters, passed to a progress callback.
public struct SnapshotProgress: Sendable {
    public var files = 0
    public var bytesScanned: UInt64 = 0
    public var newBytes: UInt64 = 0
    public var uploadedBytes = 0
    public var elapsed = 0.0
    /// What the previous snapshot scanned: this run's likely total.
    public var expectedBytes: UInt64?

    public init(files: Int = 0, bytesScanned: UInt64 = 0, newBytes: UInt64 = 0, uploadedBytes: Int = 0,
                elapsed: Double = 0, expectedBytes: UInt64? = nil) {
        (self.files, self.bytesScanned, self.newBytes, self.uploadedBytes, self.elapsed, self.expectedBytes)
            = (files, bytesScanned, newBytes, uploadedBytes, elapsed, expectedBytes)
    }

    /// The progress line: counts, rates, and, when the previous snapshot
    /// gives a total, a percentage and the time left at this run's pace.
    public func line() -> String {
        let mib = { (b: UInt64) in String(cFormat: "%.1f MiB", Double(b) / 1_048_576) }
        let rate = elapsed > 0 ? Double(uploadedBytes) / 1_048_576 / elapsed : 0
        var line = "\(files) files, \(mib(bytesScanned)) scanned, \(mib(newBytes)) new, upload \(String(cFormat: "%.1f", rate)) MiB/s, \(Int(elapsed)) s"
        if let total = expectedBytes, total > 0, bytesScanned > 0 {
            // Past the previous size the total is unknown: say so rather than show 100 % for long.
            let share = Double(bytesScanned) / Double(total)
            if share < 1 {
                let left = elapsed * (1 - share) / share
                line += String(cFormat: ", %.0f%% of last time's size, about ", share * 100) + Self.duration(left) + " left"
            } else {
                line += ", past last time's size"
            }
        }
        return line
    }

    static func duration(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        return s < 60 ? "\(s) s" : s < 3600 ? "\(s / 60) min \(s % 60) s" : "\(s / 3600) h \(s % 3600 / 60) min"
    }
}

extension SnapshotSummary {
    /// node_exporter textfile metrics of a run (`fbk snapshot --prometheus
    /// FILE`), so the client's own monitoring sees a lagging mirror the same
    /// day. `lastSuccess` is when a snapshot was last stored (this run's end
    /// if it stored one; else what the file said before).
    public func prometheus(client: String, exitStatus: Int32, finished: Date, lastSuccess: Date?) -> String {
        let c = "client=\"\(Self.label(client))\""
        var out: [String] = []
        func gauge(_ name: String, _ help: String, _ lines: [String]) {
            out += ["# HELP \(name) \(help)", "# TYPE \(name) gauge"] + lines
        }
        gauge("fbk_snapshot_last_run_timestamp_seconds", "When the last run ended.", ["fbk_snapshot_last_run_timestamp_seconds{\(c)} \(Int(finished.timeIntervalSince1970))"])
        if let lastSuccess {
            gauge("fbk_snapshot_last_success_timestamp_seconds", "When a snapshot was last stored on enough mirrors.",
                  ["fbk_snapshot_last_success_timestamp_seconds{\(c)} \(Int(lastSuccess.timeIntervalSince1970))"])
        }
        gauge("fbk_snapshot_exit_status", "The last run's exit status (README, Exit codes).", ["fbk_snapshot_exit_status{\(c)} \(exitStatus)"])
        gauge("fbk_snapshot_duration_seconds", "How long the last run took.", ["fbk_snapshot_duration_seconds{\(c)} \(String(cFormat: "%.1f", seconds))"])
        gauge("fbk_snapshot_files", "Files in the last snapshot.", ["fbk_snapshot_files{\(c)} \(files)"])
        gauge("fbk_snapshot_bytes_scanned", "Bytes of the files in the last snapshot.", ["fbk_snapshot_bytes_scanned{\(c)} \(bytesScanned)"])
        gauge("fbk_snapshot_bytes_read", "Bytes read (not found unchanged in the files cache).", ["fbk_snapshot_bytes_read{\(c)} \(bytesRead)"])
        gauge("fbk_snapshot_new_bytes", "Bytes of chunks new to the repository.", ["fbk_snapshot_new_bytes{\(c)} \(newBytes)"])
        gauge("fbk_snapshot_stored_bytes", "Bytes stored for the new chunks, compressed and sealed.", ["fbk_snapshot_stored_bytes{\(c)} \(storedBytes)"])
        gauge("fbk_snapshot_unreadable", "Files or configured paths the last run could not read.", ["fbk_snapshot_unreadable{\(c)} \(unreadable + missingPaths.count)"])
        let labels = mirrors.map { "\(c),mirror=\"\(Self.label($0.url))\"" }
        gauge("fbk_mirror_behind", "1 when the mirror lacks objects (down, or refusing): delivered by a later run.",
              zip(labels, mirrors).map { "fbk_mirror_behind{\($0)} \($1.state == "ok" ? 0 : 1)" })
        gauge("fbk_mirror_misconfigured", "1 when the mirror refuses uploads (401, 403, a wrong directory): nothing reaches it until fixed.",
              zip(labels, mirrors).map { "fbk_mirror_misconfigured{\($0)} \($1.refusing ? 1 : 0)" })
        gauge("fbk_mirror_missing_objects", "Objects the last snapshot needs that the mirror does not have yet.",
              zip(labels, mirrors).map { "fbk_mirror_missing_objects{\($0)} \($1.missingObjects)" })
        gauge("fbk_mirror_spooled_objects", "Objects waiting in the local spool for the mirror.",
              zip(labels, mirrors).map { "fbk_mirror_spooled_objects{\($0)} \($1.spooled)" })
        gauge("fbk_mirror_last_error_info", "The mirror's last error this run, as a label (absent when none).",
              zip(labels, mirrors).compactMap { l, m in m.error.map { "fbk_mirror_last_error_info{\(l),error=\"\(Self.label(String($0.prefix(200))))\"} 1" } })
        return out.joined(separator: "\n") + "\n"
    }

    /// A Prometheus label value: backslash, quote and newline escaped.
    static func label(_ s: String) -> String {
        s.replacing("\\", with: "\\\\").replacing("\"", with: "\\\"").replacing("\n", with: "\\n")
    }

    /// The last success time an earlier metrics file recorded, if any.
    public static func lastSuccess(inMetrics text: String) -> Date? {
        for line in text.split(separator: "\n") where line.hasPrefix("fbk_snapshot_last_success_timestamp_seconds{") {
            if let v = line.split(separator: " ").last.flatMap({ Double($0) }) { return Date(timeIntervalSince1970: v) }
        }
        return nil
    }
}
