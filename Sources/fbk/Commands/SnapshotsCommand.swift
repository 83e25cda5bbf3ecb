import ArgumentParser
import FoundationEssentials
import Glibc
import Platform
import Archiver

/// `fbk snapshots`: what a client's backups hold.
struct SnapshotsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "snapshots",
        abstract: "List a client's snapshots (needs the private key).",
        discussion: """
            Example:
              fbk snapshots --from /srv/fbk --client manning --signing-key bundles/manning/signing.pub --key ~/fbk-keys/private.pem
            """
    )

    @OptionGroup var repository: RepositoryOptions
    @Flag(name: .long, help: "Print JSON.")
    var json = false

    func run() throws {
        var refused = 0
        do {
            let repo = try repository.openRepository()
            if json {
                struct Row: Encodable { var id, started, finished, host: String; var paths: [String]; var files: Int; var bytes: UInt64 }
                printJSON(repo.snapshots.map {
                    Row(id: $0.id.text, started: $0.started, finished: $0.finished, host: $0.host, paths: $0.paths,
                        files: $0.stats.files, bytes: $0.stats.bytes)
                })
            } else {
                // Columns as wide as their widest cell; sizes for people (raw bytes are in --json).
                let rows = repo.snapshots.map { s in
                    [s.id.text, String(s.started.prefix(19)).terminalSafe + "Z", s.host.terminalSafe, String(s.stats.files),
                     SnapshotSummary.binarySize(s.stats.bytes), s.paths.joined(separator: " ").terminalSafe]
                }
                let header = ["ID", "started", "host", "files", "size", "paths"]
                let widths = header.indices.map { i in ([header] + rows).map { $0[i].count }.max()! }
                for row in [header] + rows {
                    let cells = row.indices.map { i in
                        i == 5 ? row[i] : (i == 3 || i == 4) ? row[i].leftPad(widths[i]) : row[i].rightPad(widths[i])
                    }
                    print(cells.joined(separator: "  "))
                }
            }
            refused = repo.rejected.count + repo.misdirecting.count
        } catch {
            throw fail(error)
        }
        // Objects refused are named on stderr: a forger was at work.
        if refused > 0 { throw ExitCode(ExitStatus.integrity) }
    }
}

extension String {
    func leftPad(_ n: Int) -> String { count >= n ? self : String(repeating: " ", count: n - count) + self }
    func rightPad(_ n: Int) -> String { count >= n ? self : self + String(repeating: " ", count: n - count) }
}
