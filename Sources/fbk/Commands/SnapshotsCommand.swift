import ArgumentParser
import Foundation
import Store

/// `fbk snapshots`: what a client's backups hold.
struct SnapshotsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "snapshots",
        abstract: "List a client's snapshots (needs the private key).",
        discussion: """
            Example:
              fbk snapshots --from /srv/fbk --client manning --key ~/fbk-keys/private.pem
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
                    Row(id: $0.id, started: $0.started, finished: $0.finished, host: $0.host, paths: $0.paths,
                        files: $0.stats.files, bytes: $0.stats.bytes)
                })
            } else {
                print("ID                                  started                   host              files        bytes  paths")
                for s in repo.snapshots {
                    print("\(s.id)  \(String(s.started.prefix(19)).terminalSafe)Z  \(s.host.terminalSafe.padding(toLength: 16, withPad: " ", startingAt: 0))  \(String(s.stats.files).leftPad(7))  \(String(s.stats.bytes).leftPad(11))  \(s.paths.joined(separator: " ").terminalSafe)")
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
}
