import ArgumentParser
import FoundationEssentials
import Glibc
import Platform
import Config
import Checker
import Backend

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

            A bucket is checked the same way from any machine: --root \
            s3://BUCKET/PREFIX/ with --s3-endpoint and --s3-credentials of \
            operator credentials (deploy/s3/operator-policy.json: list, head, \
            get); freshness is the object's LastModified, which the server sets.

            Examples:
              fbk check --config /etc/fbk/check.conf --root /srv/fbk --prometheus /var/lib/prometheus/node-exporter/fbk.prom
              fbk check --config /etc/fbk/check.conf --root s3://fbk-backups/fleet/ --s3-endpoint https://s3.eu-central-1.amazonaws.com --s3-region eu-central-1 --s3-credentials /etc/fbk/s3-operator
            """
    )

    @Option(name: .long, help: "The check configuration (enrolled clients).")
    var config: String = "/etc/fbk/check.conf"
    @Option(name: .long, help: "The storage root: one directory per client (or s3://BUCKET/PREFIX/, or a WebDAV operator port http://HOST:PORT/).")
    var root: String
    @Option(name: .long, help: "The other mirror's storage root, to compare.")
    var secondRoot: String?
    @Option(name: .long, help: "For a WebDAV --root: the operator account.")
    var user: String?
    @Option(name: .long, help: "For a WebDAV --root: the file holding the operator account's password.")
    var passwordFile: String?
    @OptionGroup var s3: S3Options
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
            let settings = try s3.settings(for: [root] + (secondRoot.map { [$0] } ?? []))
            let storage = try makeStorageRoot(root, s3: settings, user: user, passwordFile: passwordFile)
            var r = Checker.run(config: c, storage: storage, deep: deep, now: WallClock.now(), state: remembered, orphanGrace: orphanGraceDays * 86_400)
            try remembered?.save()
            if let secondRoot {
                for (client, onlyA, onlyB) in try Checker.compare(config: c, rootA: storage, rootB: try makeStorageRoot(secondRoot, s3: settings, user: user, passwordFile: passwordFile)) {
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
            Each is a storage root on local disk (copied or mounted), a bucket \
            (s3://BUCKET/PREFIX/, with --s3-endpoint and --s3-credentials: \
            operator credentials, which may also put; --s3-object-lock gives what \
            is copied into a bucket its lock), or a WebDAV server's root \
            (http://HOST:PORT/, with --user and --password-file: deploy/nginx's \
            operator port to copy from; to copy into fbk's nginx, give its \
            storage directory on that server, since no account there writes \
            into every client's directory). Objects are copied as they are, \
            create-only: nothing is decrypted, overwritten or deleted, and what \
            prune removed from the destination is not brought back.

            Examples:
              fbk mirror-sync /srv/fbk /mnt/mirror2 --client manning
              fbk mirror-sync /srv/fbk s3://fbk-backups/fleet/ --s3-endpoint https://s3.eu-central-1.amazonaws.com --s3-credentials /etc/fbk/s3-operator --s3-object-lock compliance --s3-object-lock-days 21
            """
    )

    @Argument(help: "The storage root to copy from (a directory, s3://BUCKET/PREFIX/ or http://HOST:PORT/).")
    var source: String
    @Argument(help: "The storage root to copy to (a directory, s3://BUCKET/PREFIX/ or http://HOST:PORT/).")
    var destination: String
    @Option(name: .long, help: "For a WebDAV source or destination: the account.")
    var user: String?
    @Option(name: .long, help: "For a WebDAV source or destination: the file holding the account's password.")
    var passwordFile: String?
    @OptionGroup var s3: S3Options
    @Option(name: .long, help: "Only this client; repeat (default: every client directory).")
    var client: [String] = []

    func run() throws {
        do {
            let settings = try s3.settings(for: [source, destination])
            let copied = try MirrorSync.run(source: try makeStorageRoot(source, s3: settings, user: user, passwordFile: passwordFile),
                                            destination: try makeStorageRoot(destination, s3: settings, user: user, passwordFile: passwordFile),
                                            clients: client.isEmpty ? nil : client)
            let total = copied.values.reduce(0, +)
            for (c, n) in copied.sorted(by: { $0.key < $1.key }) { print("\(c): \(n) objects copied") }
            print("\(total) objects copied from \(source) to \(destination)")
        } catch {
            throw fail(error)
        }
    }
}
