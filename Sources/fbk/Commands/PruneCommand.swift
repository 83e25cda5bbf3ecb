import ArgumentParser
import Config
import FoundationEssentials
import Glibc
import Platform
import Pruner
import Backend

/// `fbk prune`: server-side retention, without any key.
struct PruneCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prune",
        abstract: "Remove from a mirror's storage what each client's retention policy no longer keeps (server command, no keys).",
        discussion: """
            Run on each mirror, with the check configuration, whose clients' \
            `retention:` says what to keep (keep_within, keep_last, keep_daily, \
            keep_weekly, keep_monthly, keep_yearly). Snapshots are judged by \
            this server's receipt times, never by what a client claims. Every \
            snapshot received within keep_within is kept, and every pack a kept \
            snapshot needs; nothing newer than keep_within is removed, and \
            keys/ never is. What is removed is moved to ROOT/.fbk-trash and \
            purged after trash_grace (default 14d); a snapshot that arrives late \
            and names a trashed pack gets it back. A client whose check fails, or \
            whose reuse_horizon keep_within does not cover, is refused unless \
            --force. Run it after the weekly check, on each mirror on its own.

            From another machine, give the mirror's prune port instead of \
            --root (deploy/nginx/fbk-prune.conf: MOVE into the trash, DELETE \
            only there) with --url, --user and --password-file; device blobs \
            are pruned on the storage root only.

            On S3 (--url s3://BUCKET/PREFIX/ with --s3-endpoint and \
            --s3-credentials of deploy/s3/prune-policy.json), the trash is \
            PREFIX/.fbk-trash/, a move is a copy and a delete of the object's \
            version, and an object whose Object Lock has not expired is left \
            and listed as locked (a locked catalog keeps its snapshot).

            Exit status: 0 done (or nothing to do), 1 a client was refused, 64 bad configuration.

            Examples:
              fbk prune --config /etc/fbk/check.conf --root /srv/fbk --dry-run
              fbk prune --config /etc/fbk/check.conf --url http://[2001:db8::1]:8086/ --user pruner --password-file /etc/fbk/prune-password
              fbk prune --config /etc/fbk/check.conf --url s3://fbk-backups/fleet/ --s3-endpoint https://s3.eu-central-1.amazonaws.com --s3-region eu-central-1 --s3-credentials /etc/fbk/s3-prune
            """
    )

    @Option(name: .long, help: "The check configuration (enrolled clients and their retention).")
    var config: String = "/etc/fbk/check.conf"
    @Option(name: .long, help: "The storage root: one directory per client.")
    var root: String?
    @Option(name: .long, help: "Or the mirror's prune port (deploy/nginx/fbk-prune.conf), e.g. http://[2001:db8::1]:8086/, or its bucket, s3://BUCKET/PREFIX/.")
    var url: String?
    @OptionGroup var s3: S3Options
    @Option(name: .long, help: "With --url: the prune account.")
    var user: String?
    @Option(name: .long, help: "With --url: the file holding the prune account's password.")
    var passwordFile: String?

    func validate() throws {
        guard (root == nil) != (url == nil) else { throw ValidationError("give --root DIR (the storage root) or --url URL (the mirror's prune port), one of them") }
        if let url, url.hasPrefix("s3://") {
            _ = try s3.settings(for: [url])
        } else if url != nil && (user == nil || passwordFile == nil) {
            throw ValidationError("--url needs --user and --password-file (the prune account)")
        }
    }
    @Option(name: .long, help: "Only this client; repeat (default: every client with a retention policy).")
    var client: [String] = []
    @Flag(name: .long, help: "Print what would be removed; change nothing.")
    var dryRun = false
    @Flag(name: .long, help: "Prune a client even if its check fails or its reuse horizon is not covered.")
    var force = false
    @Flag(name: .long, help: "Print the plan as JSON.")
    var json = false

    func run() throws {
        let plan: PrunePlan
        do {
            let c = try CheckConfig.load(path: config)
            var options = Pruner.Options()
            options.dryRun = dryRun
            options.force = force
            options.clients = client.isEmpty ? nil : client
            for name in client where !c.clients.contains(where: { $0.name == name }) {
                throw StoreError(.config, "\(name) is not a client in \(config)")
            }
            let target: PruneTarget
            if let root {
                target = .storageRoot(root)
            } else if let url, let settings = try s3.settings(for: [url]) {
                target = .s3(url: url, settings: settings)
            } else {
                target = .webDAV(url: url!, user: user, passwordFile: passwordFile)
            }
            plan = Pruner.run(config: c, target: target, options: options)
        } catch {
            throw fail(error)
        }
        if json { printJSON(plan) } else { print(plan.text()) }
        if plan.exitCode != 0 { throw ExitCode(plan.exitCode) }
    }
}
