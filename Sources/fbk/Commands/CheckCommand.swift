import ArgumentParser
import Foundation
import Platform
import Config
import Checker

/// `fbk check`: the weekly server-side check.
struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Check a mirror's storage without any key: every client uploading, every snapshot complete, sizes plausible.",
        discussion: """
            Reads the storage root nginx serves, directly from disk. Freshness \
            uses the server's own receipt time (file times), never a client's \
            claim. Catalogs must verify with each client's enrolled signing key. \
            With --state, each run hashes every object it has not verified yet \
            (against its name and its catalog), and re-hashes --reverify-share of \
            the stored bytes, those verified longest ago, so tampering is caught at \
            the next run and bit rot within 1/share runs (8 weeks by default). \
            --deep re-hashes every object. \
            Give --second-root (the other mirror's storage, copied or mounted) to \
            list objects one mirror has and the other lacks; `fbk mirror-sync` \
            copies them across.

            Exit status: 0 all fine, 1 warnings, 2 failures, 64 bad configuration.

            Example:
              fbk check --config /etc/fbk/check.conf --root /srv/fbk --prometheus /var/lib/prometheus/node-exporter/fbk.prom
            """
    )

    @Option(name: .long, help: "The check configuration (enrolled clients).")
    var config: String = "/etc/fbk/check.conf"
    @Option(name: .long, help: "The storage root: one directory per client.")
    var root: String
    @Option(name: .long, help: "The other mirror's storage root, to compare.")
    var secondRoot: String?
    @Flag(name: .long, help: "Re-hash every object (disk and SHA-256 speed).")
    var deep = false
    @Option(name: .long, help: "Remember what was verified in this file (e.g. /var/lib/fbk-check/state): new objects and a rolling share are hashed each run.")
    var state: String?
    @Option(name: .long, help: "With --state: the share of stored bytes re-hashed each run (0 to 1).")
    var reverifyShare: Double = 0.125
    @Option(name: .long, help: "Days after which a pack no signed catalog needs is flagged.")
    var orphanGraceDays: Double = 7

    func validate() throws {
        guard (0...1).contains(reverifyShare) else { throw ValidationError("--reverify-share must be between 0 and 1") }
        guard orphanGraceDays >= 0 else { throw ValidationError("--orphan-grace-days must not be negative") }
    }
    @Flag(name: .long, help: "Print the report as JSON.")
    var json = false
    @Option(name: .long, help: "Write node_exporter textfile metrics here (atomically).")
    var prometheus: String?

    func run() throws {
        let report: CheckReport
        do throws(any Error) {
            let c = try CheckConfig.load(path: config)
            let remembered = try state.map { (path) throws(StoreError) in try CheckState(path: path, reverifyShare: reverifyShare) }
            var r = Checker.run(config: c, root: root, deep: deep, now: WallClock.now(), state: remembered, orphanGrace: orphanGraceDays * 86_400)
            try remembered?.save()
            if let secondRoot {
                for (client, onlyA, onlyB) in try Checker.compare(config: c, rootA: root, rootB: secondRoot) {
                    guard let i = r.clients.firstIndex(where: { $0.client == client }) else { continue }
                    if !onlyA.isEmpty { r.clients[i].add(.warn, "\(onlyA.count) objects only on \(root): \(onlyA.prefix(3).joined(separator: ", "))") }
                    if !onlyB.isEmpty { r.clients[i].add(.warn, "\(onlyB.count) objects only on \(secondRoot): \(onlyB.prefix(3).joined(separator: ", "))") }
                    r.status = max(r.status, r.clients[i].status)
                }
            }
            report = r
            if let prometheus {
                do {
                    try DurableFile.replace(prometheus, with: Array(report.prometheus(now: Date()).utf8), mode: 0o644)
                } catch {
                    throw CLIError(message: error.message, status: ExitStatus.cannotCreate)
                }
            }
        } catch {
            throw fail(error)
        }
        if json { printJSON(report) } else { print(report.text()) }
        if report.exitCode != 0 { throw ExitCode(report.exitCode) }
    }
}

/// `fbk mirror-sync`: copy what one mirror has and the other lacks.
struct MirrorSyncCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mirror-sync",
        abstract: "Copy objects one mirror's storage has and another lacks (operator command, no keys needed).",
        discussion: """
            Both are storage roots on local disk (copied or mounted). Objects are \
            copied as they are, create-only: nothing is decrypted, overwritten or \
            deleted.

            Example:
              fbk mirror-sync /srv/fbk /mnt/mirror2 --client manning
            """
    )

    @Argument(help: "The storage root to copy from.")
    var source: String
    @Argument(help: "The storage root to copy to.")
    var destination: String
    @Option(name: .long, help: "Only this client; repeat (default: every client directory).")
    var client: [String] = []

    func run() throws {
        do {
            let copied = try MirrorSync.run(source: source, destination: destination, clients: client.isEmpty ? nil : client)
            let total = copied.values.reduce(0, +)
            for (c, n) in copied.sorted(by: { $0.key < $1.key }) { print("\(c): \(n) objects copied") }
            print("\(total) objects copied from \(source) to \(destination)")
        } catch {
            throw fail(error)
        }
    }
}
