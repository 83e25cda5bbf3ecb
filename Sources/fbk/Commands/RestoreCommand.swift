import ArgumentParser
import Foundation
import Store

/// `fbk restore`: a snapshot, or chosen paths of it, into a directory.
struct RestoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Restore a snapshot, or chosen paths of it, into an empty directory (needs the private key).",
        discussion: """
            Content, modes, times, symbolic links, hardlinks, FIFOs and xattrs are \
            restored; owners, user/group names and devices too when run as root. \
            Each pack is decrypted once. Files whose data is missing or damaged on \
            every --from source are named and left out; the rest is restored, and \
            the exit status is 65.

            Example:
              fbk restore --from /srv/fbk --client manning --key private.pem latest --target /tmp/r etc/nginx
            """
    )

    @OptionGroup var repository: RepositoryOptions
    @Option(name: .long, help: "Empty or new directory to restore into.")
    var target: String
    @Flag(name: .long, help: "Print the summary as JSON.")
    var json = false
    @Argument(help: "Snapshot ID, prefix, or latest.")
    var snapshot: String
    @Argument(help: "Paths in the snapshot to restore (default: all).")
    var paths: [String] = []

    func run() throws {
        limitMallocRetention()
        let summary: RestoreSummary
        do {
            let repo = try repository.openRepository()
            let s = try repo.snapshot(snapshot)
            let restorer = Restorer(repository: repo, snapshot: s, target: target)
            if isatty(2) == 1 {
                restorer.progress = { chunks, bytes in
                    FileHandle.standardError.write(Data("\r\u{1B}[K\(chunks) chunks, \(bytes >> 20) MiB restored".utf8))
                }
            }
            summary = try onLargeStack { try restorer.run(paths: paths) }
            if isatty(2) == 1 { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
        } catch {
            throw fail(error)
        }
        if json { printJSON(summary) } else { print(summary.text()) }
        if !summary.damaged.isEmpty { throw ExitCode(ExitStatus.integrity) }
    }
}

/// `fbk verify`: decrypt and check every chunk a snapshot needs.
struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Decrypt and check every chunk a snapshot needs, writing nothing (needs the private key).",
        discussion: """
            Every pack is authenticated (AES-GCM) and every chunk's HMAC is \
            checked against its ID with the escrowed client secret.

            Example:
              fbk verify --from /srv/fbk --client manning --key private.pem latest
            """
    )

    @OptionGroup var repository: RepositoryOptions
    @Flag(name: .long, help: "Print the summary as JSON.")
    var json = false
    @Argument(help: "Snapshot ID, prefix, or latest.")
    var snapshot: String

    func run() throws {
        limitMallocRetention()
        let summary: RestoreSummary
        do {
            let repo = try repository.openRepository()
            guard repo.keys != nil else {
                throw StoreError(.integrity, "the escrowed client secret is missing: chunk IDs cannot be checked")
            }
            let s = try repo.snapshot(snapshot)
            let restorer = Restorer(repository: repo, snapshot: s, target: "", write: false)
            summary = try onLargeStack { try restorer.run(paths: []) }
        } catch {
            throw fail(error)
        }
        if json { printJSON(summary) } else {
            print("verified \(summary.chunksVerified) chunks in \(summary.packsDecrypted) packs for \(summary.snapshot)")
            for d in summary.damaged { print("DAMAGED: \(d)") }
            for w in summary.warnings { print("warning: \(w)") }
        }
        if !summary.damaged.isEmpty { throw ExitCode(ExitStatus.integrity) }
    }
}
