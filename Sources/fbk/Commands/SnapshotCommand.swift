import ArgumentParser
import FoundationEssentials
import Glibc
import Seal
import Platform
import Format
import Backend
import Config
import Index
import Archiver

/// `fbk snapshot`: the daily job.
struct SnapshotCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "snapshot",
        abstract: "Back up the configured paths to every configured mirror.",
        discussion: """
            Uploads only what the mirrors do not hold yet (the local index \
            says what they hold; nothing is ever read back from a mirror). \
            Each object goes to all mirrors at once; a mirror that is down does \
            not stop the run, and what it missed is delivered on the next run. \
            Every snapshot is complete on its own: there is no full/incremental \
            schedule to keep.

            Exit status: 0 stored on every mirror; 3 stored, but some files or \
            configured paths could not be read; 4 stored, but a mirror is behind \
            (down now: what it lacks is delivered by a later run); 5 stored, but \
            a mirror refuses uploads (401, 403, wrong directory: misconfigured, \
            nothing reaches it until fixed); 6 a before hook failed, no \
            snapshot taken; 1 all well but a hook failed; 64 configuration error, \
            66 index missing or damaged, 74 local I/O error, 75 not enough \
            mirrors hold the snapshot, 130 stopped by a signal.

            Example:
              fbk snapshot --config /etc/fbk/fbk.conf --json
            """
    )

    @Option(name: .long, help: "Configuration file.")
    var config: String = ClientConfig.defaultPath
    @Flag(name: .long, help: "Print the summary as JSON.")
    var json = false
    @Flag(name: .long, help: "Start with a new, empty index if it is missing or damaged (uploads everything again).")
    var allowReupload = false
    @Option(name: .long, help: "Also back up standard input, as /.fbk-commands/NAME in the snapshot (e.g. pg_dump … | fbk snapshot --stdin db.pgdump).")
    var stdin: String?
    @Option(name: .long, help: "Write node_exporter textfile metrics here (atomically), e.g. /var/lib/prometheus/node-exporter/fbk-snapshot.prom.")
    var prometheus: String?
    @Flag(name: .long, help: "Walk and chunk, upload nothing, change neither index nor spool, run no hooks; print what would be new.")
    var dryRun = false

    func validate() throws {
        if let stdin, !CommandSource.isValidName(stdin) {
            throw ValidationError("--stdin \(stdin): a name of letters, digits, '.', '_' and '-', starting with a letter or digit")
        }
    }

    func run() throws {
        limitMallocRetention()
        let c: ClientConfig
        do { c = try ClientConfig.load(path: config) } catch { throw fail(error) }
        // A dry run changes nothing, so it runs no hooks (they may stop services).
        let hooks = HookRunner(hooks: dryRun ? Hooks() : c.hooks, client: c.client, configPath: config)
        var status: Int32
        var summary: SnapshotSummary?
        var problem: String?
        let beforeFailed = hooks.run("before", c.hooks.before)
        if let beforeFailed, !c.hooks.continueIfBeforeFails {
            problem = "a before hook failed (\(beforeFailed)): no snapshot taken; fix the hook, or set before_failure: continue to take it anyway"
            writeStandardError("fbk: error: \(problem!)\n".terminalSafe)
            status = ExitStatus.beforeHookFailed
        } else {
            do {
                status = try snapshot(c, summary: &summary)
            } catch {
                problem = "\(error)"
                status = fail(error).rawValue
            }
        }
        var environment = [
            "FBK_STATUS": String(status),
            "FBK_OUTCOME": status == 0 ? "success" : [ExitStatus.partial, ExitStatus.mirrorBehind, ExitStatus.mirrorRefusing].contains(status) ? "partial" : "failed",
            "FBK_SNAPSHOT": summary?.snapshot ?? "",
            "FBK_ERROR": problem ?? "",
        ]
        if let summary {
            environment["FBK_FILES"] = String(summary.files)
            environment["FBK_BYTES_SCANNED"] = String(summary.bytesScanned)
            environment["FBK_NEW_BYTES"] = String(summary.newBytes)
            environment["FBK_STORED_BYTES"] = String(summary.storedBytes)
            environment["FBK_MIRRORS_BEHIND"] = summary.mirrorsBehind.joined(separator: " ")
        }
        let afterFailed = hooks.run("after", c.hooks.after, environment: environment)
        let onFailureFailed = status != 0 ? hooks.run("on_failure", c.hooks.onFailure, environment: environment) : nil
        // A hook that failed around a snapshot that went well: finished, with a warning.
        if status == 0 && (beforeFailed ?? afterFailed ?? onFailureFailed) != nil { status = ExitStatus.warnings }
        if let prometheus, !dryRun { writeMetrics(prometheus, client: c.client, summary: summary, status: status) }
        if status != 0 { throw ExitCode(status) }
    }

    private func snapshot(_ real: ClientConfig, summary result: inout SnapshotSummary?) throws -> Int32 {
        var c = real
        let keys = try ClientKeys.load(path: c.secret)
        let envelope = try Envelope(recipients: c.recipients.map { try Certificate(contentsOf: $0) })
        try FileManager.default.createDirectory(atPath: c.state, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        let lock = try StateLock(directory: c.state)
        defer { lock.release() }
        let dry = try dryRun ? DryRunState(real) : nil
        defer { dry?.remove() }
        if let dry { c = dry.config }
        let index = try openIndex(c)
        // One limiter for every mirror: upload_limit is the run's total.
        var options = c.mirrorOptions
        options.uploadLimiter = c.uploadLimit.map { UploadLimiter(bytesPerSecond: $0) }
        let mirrors: [any Backend] = dryRun ? c.mirrors.map { DiscardingBackend(location: $0.url) } : try c.mirrors.map {
            try makeMirror(url: $0.url, user: $0.user ?? c.client, passwordFile: $0.passwordFile, s3: $0.s3, options: options)
        }
        if let stdin, c.commands.contains(where: { $0.name == stdin }) {
            throw StoreError(.config, "--stdin \(stdin): the configuration has a command of that name; choose another")
        }
        let archiver = try Archiver(config: c, keys: keys, envelope: envelope, index: index, mirrors: mirrors)
        archiver.stdinSource = stdin
        let stop = SignalFlag.install()
        archiver.isCancelled = { stop.isSet }
        let reporter = ProgressReporter(interval: c.logInterval)
        archiver.progress = { reporter.report($0) }

        var summary: SnapshotSummary
        var failure: Error?
        do {
            summary = try onLargeStack { try archiver.run() }
        } catch {
            summary = archiver.partialSummary
            failure = error
        }
        reporter.finish()
        summary.dryRun = dryRun
        if dryRun && !json { print("dry run: nothing was uploaded, the index and spool are as they were; what the run would store:") }
        print(json ? summary.json() : summary.text())
        result = summary
        if let failure { throw failure }
        // A dry run says what cannot be read; mirrors it does not contact are no one's concern.
        if dryRun { return summary.unreadable > 0 || !summary.missingPaths.isEmpty ? ExitStatus.partial : 0 }
        return summary.exitStatus
    }

    /// The run's metrics, atomically; a failure to write them is said, and does not change the run's status.
    private func writeMetrics(_ path: String, client: String, summary: SnapshotSummary?, status: Int32) {
        let now = Date()
        let previous = (try? String(contentsOfFile: path, encoding: .utf8)).flatMap(SnapshotSummary.lastSuccess(inMetrics:))
        let stored = summary?.snapshot != nil
        let text = (summary ?? SnapshotSummary()).prometheus(client: client, exitStatus: status, finished: now, lastSuccess: stored ? now : previous)
        do {
            try DurableFile.replace(path, with: Array(text.utf8), mode: 0o644)
        } catch {
            writeStandardError("fbk: warning: cannot write the metrics file \(path): \(error)\n".terminalSafe)
        }
    }

    /// The index, or what to do when it is unusable (the policy is Index's;
    /// the command only says how this client's would be rebuilt).
    private func openIndex(_ c: ClientConfig) throws -> Index {
        let ifUnusable: Index.IfUnusable = allowReupload
            ? .startOver(warn: { writeStandardError("fbk: warning: \($0)\n") })
            : .refuse(advice: "Rebuild it from the mirrors (clients cannot read them: run it where the storage is, or over the operator port, then copy the index and its spool/ back into \(c.state)):\n  \(Self.rebuildCommand(c))\nor run with --allow-reupload to start a new index (everything is uploaded again)")
        return try Index.openForSnapshot(path: c.indexPath, ifUnusable: ifUnusable)
    }
}

extension SnapshotCommand {
    /// The `fbk index rebuild` command for this client, every value it
    /// knows filled in: a mirror given as `file://…/CLIENT/` is read from
    /// its storage root; a WebDAV mirror through the operator port of
    /// deploy/nginx (8085 where clients use 8084) with an operator account.
    static func rebuildCommand(_ c: ClientConfig) -> String {
        var parts = ["fbk index rebuild --client \(c.client) --secret \(c.secret)"]
        var needsAccount = false
        var s3: S3Settings?
        for m in c.mirrors {
            var from: String
            // The storage root: the URL without its last component (the client's directory).
            func storageRoot() -> String {
                var trimmed = Substring(m.url)
                while trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
                let scheme = trimmed.firstRange(of: "://").map { $0.upperBound } ?? trimmed.startIndex
                return String(trimmed[..<(trimmed[scheme...].lastIndex(of: "/") ?? trimmed.endIndex)]) + "/"
            }
            if m.url.hasPrefix("s3://"), let settings = m.s3 {
                // The bucket and prefix, read with operator credentials.
                from = storageRoot()
                s3 = settings
            } else if m.url.hasPrefix("file://") {
                from = String(m.url.dropFirst("file://".count))
                while from.hasSuffix("/") { from.removeLast() }
                from = PathName.parent(from)
            } else {
                from = storageRoot().replacing(":8084", with: ":8085")
                needsAccount = true
            }
            parts.append("--from \(from) --mirror-url \(m.url)")
        }
        if needsAccount { parts.append("--user OPERATOR --password-file OPERATOR_PASSWORD_FILE") }
        if let s3 {
            parts.append("--s3-endpoint \(s3.endpoint) --s3-region \(s3.region)\(s3.virtualHost ? " --s3-virtual-host" : "") --s3-credentials OPERATOR_S3_CREDENTIALS")
        }
        parts.append("--out \(c.indexPath)")
        return parts.joined(separator: " ")
    }
}

/// An exclusive lock on the state directory: one snapshot at a time.
final class StateLock {
    private let fd: Int32

    init(directory: String) throws {
        fd = open(directory + "/lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw StoreError(.io, "cannot open \(directory)/lock: \(String(cString: strerror(errno)))")
        }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            throw StoreError(.io, "another fbk snapshot is running on \(directory)")
        }
    }

    func release() {
        flock(fd, LOCK_UN)
        close(fd)
    }
}

/// Set by SIGTERM or SIGINT; the archiver stops at the next file or chunk.
final class SignalFlag: @unchecked Sendable {
    nonisolated(unsafe) static var raised: sig_atomic_t = 0
    var isSet: Bool { Self.raised != 0 }

    static func install() -> SignalFlag {
        signal(SIGTERM) { _ in SignalFlag.raised = 1 }
        signal(SIGINT) { _ in SignalFlag.raised = 1 }
        return SignalFlag()
    }
}

/// A live line on a terminal, or a log line every `interval` seconds otherwise.
final class ProgressReporter: @unchecked Sendable {
    private let terminal = isatty(2) == 1
    private let interval: Double
    private var lastLog = 0.0
    private var drew = false

    init(interval: Int) { self.interval = Double(interval) }

    func report(_ p: SnapshotProgress) {
        let line = p.line()
        if terminal {
            writeStandardError("\r\u{1B}[K\(line)")
            drew = true
        } else if p.elapsed - lastLog >= interval {
            lastLog = p.elapsed
            writeStandardError("fbk: progress: \(line)\n")
        }
    }

    func finish() {
        if drew { writeStandardError("\r\u{1B}[K") }
    }
}
