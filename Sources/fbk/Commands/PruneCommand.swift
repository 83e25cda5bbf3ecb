import ArgumentParser
import Config
import Foundation
import Platform
import Pruner

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

            Exit status: 0 done (or nothing to do), 1 a client was refused, 64 bad configuration.

            Example:
              fbk prune --config /etc/fbk/check.conf --root /srv/fbk --dry-run
            """
    )

    @Option(name: .long, help: "The check configuration (enrolled clients and their retention).")
    var config: String = "/etc/fbk/check.conf"
    @Option(name: .long, help: "The storage root: one directory per client.")
    var root: String
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
            plan = Pruner.run(config: c, root: root, options: options)
        } catch {
            throw fail(error)
        }
        if json { printJSON(plan) } else { print(plan.text()) }
        if plan.exitCode != 0 { throw ExitCode(plan.exitCode) }
    }
}
