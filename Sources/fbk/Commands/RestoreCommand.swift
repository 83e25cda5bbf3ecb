import ArgumentParser
import FoundationEssentials
import Glibc
import Platform
import Restorer

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

            SNAPSHOT:/DIR puts the contents of that directory of the snapshot \
            straight into the target (as restic's SNAPSHOT:/DIR, borg's \
            --strip-components); paths are then relative to it.

            --overwrite restores over a tree that is there (a staging \
            directory inside the target, then each entry renamed into place: \
            what matches is left, links in the target are never followed); \
            --delete also removes what the snapshot lacks below the restored \
            paths. `fbk restore … latest:/etc --target /etc --overwrite` puts \
            /etc back.

            Examples:
              fbk restore --from /srv/fbk --client manning --signing-key bundles/manning/signing.pub --key private.pem latest --target /tmp/r etc/nginx
              fbk restore --from /srv/fbk --client manning --signing-key bundles/manning/signing.pub --key private.pem latest:/srv/www --target /srv/www.restored
            """
    )

    @OptionGroup var repository: RepositoryOptions
    @Option(name: .long, help: "Empty or new directory to restore into.")
    var target: String
    @Flag(name: .long, help: "Print the summary as JSON.")
    var json = false
    @Flag(name: .long, help: "Restore data from a client no longer trusted: no device nodes, no setuid/setgid bits, no file capabilities.")
    var stripPrivileges = false
    @Flag(name: .long, help: "Restore over what the target holds: replace what differs, leave what matches (size, time, mode, owner, bytes).")
    var overwrite = false
    @Flag(name: .long, help: "With --overwrite: also remove what the target holds below the restored paths and the snapshot lacks.")
    var delete = false
    @Argument(help: "Snapshot ID, prefix, or latest; SNAPSHOT:/DIR restores that directory's contents as the target.")
    var snapshot: String
    @Argument(help: "Paths in the snapshot to restore (default: all).")
    var paths: [String] = []

    func validate() throws {
        if delete && !overwrite { throw ValidationError("--delete goes with --overwrite (a restore into an empty directory has nothing to delete)") }
    }

    func run() throws {
        limitMallocRetention()
        let (snapshot, subtree) = Self.split(self.snapshot)
        var summary: RestoreSummary
        var misdirecting: String?
        do {
            let repo = try repository.openRepository()
            let s = try repo.snapshot(snapshot)
            let restorer = Restorer(repository: repo, snapshot: s, target: target)
            restorer.stripPrivileges = stripPrivileges
            restorer.subtree = subtree
            restorer.overwrite = overwrite
            restorer.deleteExtra = delete
            if isatty(2) == 1 {
                restorer.progress = { chunks, bytes in
                    writeStandardError("\r\u{1B}[K\(chunks) chunks, \(bytes >> 20) MiB restored")
                }
            }
            summary = try onLargeStack { try restorer.run(paths: paths) }
            if isatty(2) == 1 { writeStandardError("\r\u{1B}[K") }
            misdirecting = repo.misdirecting[s.id]
        } catch {
            throw fail(error)
        }
        if let misdirecting { summary.warnings.insert("FORGED LISTING: snapshot \(summary.snapshot): \(misdirecting)", at: 0) }
        if json { printJSON(summary) } else { print(summary.text()) }
        if !summary.damaged.isEmpty || misdirecting != nil { throw ExitCode(ExitStatus.integrity) }
    }
}

extension RestoreCommand {
    /// `ID:/dir` → (`ID`, `/dir`); snapshot IDs and `latest` hold no colon.
    static func split(_ argument: String) -> (snapshot: String, subtree: String?) {
        guard let colon = argument.firstIndex(of: ":") else { return (argument, nil) }
        let dir = String(argument[argument.index(after: colon)...])
        return (String(argument[..<colon]), dir.split(separator: "/").isEmpty ? nil : dir)
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
              fbk verify --from /srv/fbk --client manning --signing-key bundles/manning/signing.pub --key private.pem latest
            """
    )

    @OptionGroup var repository: RepositoryOptions
    @Flag(name: .long, help: "Print the summary as JSON.")
    var json = false
    @Argument(help: "Snapshot ID, prefix, or latest.")
    var snapshot: String

    func run() throws {
        limitMallocRetention()
        var summary: RestoreSummary
        var misdirecting: String?
        do {
            let repo = try repository.openRepository()
            let s = try repo.snapshot(snapshot)
            let restorer = Restorer(repository: repo, snapshot: s, target: "", write: false)
            summary = try onLargeStack { try restorer.run(paths: []) }
            misdirecting = repo.misdirecting[s.id]
        } catch {
            throw fail(error)
        }
        if let misdirecting {
            summary.damaged.append("FORGED LISTING: \(misdirecting)")
        }
        if json { printJSON(summary) } else {
            print("verified \(summary.chunksVerified) chunks in \(summary.packsDecrypted) packs for \(summary.snapshot)")
            for d in summary.damaged { print("DAMAGED: \(d.terminalSafe)") }
            for w in summary.warnings { print("warning: \(w.terminalSafe)") }
        }
        if !summary.damaged.isEmpty { throw ExitCode(ExitStatus.integrity) }
    }
}
