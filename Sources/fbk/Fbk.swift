// fbk: the command-line front end. Each subcommand lives in Commands/, one
// per file; the work itself is done by the Chunker, Seal and Store modules.

import ArgumentParser
import Platform
import Seal

@main
struct Fbk: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fbk",
        abstract: "Write-only, deduplicating, encrypted backups to WebDAV mirrors.",
        discussion: """
            Clients hold only the operator's public certificate: they can write \
            backups but never read or decrypt them. Restores happen offline with \
            the private key.
            """,
        version: fbkVersion,
        subcommands: [InitCommand.self, SnapshotCommand.self, EnrollCommand.self, KeygenCommand.self, SnapshotsCommand.self, LsCommand.self, DiffCommand.self, FindCommand.self, MountCommand.self,
                      RestoreCommand.self, VerifyCommand.self, IndexCommand.self, CheckCommand.self, PruneCommand.self, MirrorSyncCommand.self,
                      DecryptCommand.self, ChunkCommand.self]
    )

    /// OpenSSL is set up before anything runs, so that no cleanup of its
    /// runs at exit beside threads still ending (OpenSSLLibrary).
    static func main() {
        OpenSSLLibrary.keepStateUntilExit()
        main(nil)
    }
}
