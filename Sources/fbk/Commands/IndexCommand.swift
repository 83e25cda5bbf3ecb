import ArgumentParser
import FoundationEssentials
import Glibc
import Platform
import Format
import Config
import Index

/// `fbk index`: the client's local index.
struct IndexCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "index",
        abstract: "Work on a client's local index.",
        subcommands: [IndexCreateCommand.self, IndexRebuildCommand.self]
    )
}

/// `fbk index create`: an empty index for a newly installed client.
struct IndexCreateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create",
        abstract: "Create the empty index of a newly enrolled client (refuses if one exists).",
        discussion: """
            For a client that has never uploaded. A client that has uploaded             before and lost its index needs `fbk index rebuild` instead, or the             next snapshot uploads everything again.
            """
    )

    @Option(name: .long, help: "Configuration file.")
    var config: String = ClientConfig.defaultPath

    func run() throws {
        do {
            let c = try ClientConfig.load(path: config)
            try FileManager.default.createDirectory(atPath: c.state, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
            _ = try Index.create(path: c.indexPath)
            print("created \(c.indexPath)")
        } catch {
            throw fail(error)
        }
    }
}

/// `fbk index rebuild`: recover a lost or damaged index from the mirrors.
struct IndexRebuildCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rebuild",
        abstract: "Rebuild a client's index from its mirrors, with the client secret (never the private key).",
        discussion: """
            Reads the signed catalogs, the mirrors' directory listings and the \
            pack listings (encrypted with a key derived from the client secret), \
            and writes an index that knows every chunk the mirrors hold, so the \
            next snapshot uploads nothing they already have. Give each mirror as \
            --from (its storage root, a copy, or its operator WebDAV URL) with \
            --mirror-url naming it as the client's configuration does, in the \
            same order. Objects one mirror lacks are copied into the spool beside \
            the index, so the client's next run delivers them. An existing index \
            at --out is merged into. Copy the result (and its spool/) into the \
            client's state directory.

            Example:
              fbk index rebuild --client manning --secret manning.secret \\
                --from /srv/fbk --mirror-url http://[2001:db8::1]:8084/manning/ \\
                --from /mnt/mirror2 --mirror-url http://[2001:db8::2]:8084/manning/ \\
                --out /tmp/manning-state/index.sqlite
            """
    )

    @OptionGroup var source: SourceOptions
    @Option(name: .long, help: "The mirror's URL as the client's configuration names it; one per --from, in order.")
    var mirrorURL: [String] = []
    @Option(name: .long, help: "The client name.")
    var client: String
    @Option(name: .long, help: "The client secret file (64 hex digits).")
    var secret: String
    @Option(name: .long, help: "The index to write or merge into.")
    var out: String
    @Flag(name: .long, help: "Print the summary as JSON.")
    var json = false

    func validate() throws {
        guard mirrorURL.count == source.from.count else {
            throw ValidationError("give one --mirror-url per --from (\(source.from.count)), naming the mirror as the client's configuration does")
        }
    }

    func run() throws {
        do {
            let keys = try ClientKeys.load(path: secret)
            let sources = zip(try source.sources(client: client), mirrorURL).map {
                RebuildSource(mirrorURL: $1, source: $0)
            }
            let summary = try IndexRebuild.run(sources: sources, keys: keys, client: client, indexPath: out)
            if json { printJSON(summary) } else {
                print("rebuilt \(out): \(summary.snapshots) snapshots, \(summary.packs) packs, \(summary.chunks) chunks; \(summary.respooled) objects spooled for mirrors that lack them")
                for (m, n) in summary.missing.sorted(by: { $0.key < $1.key }) { print("mirror \(m) lacks \(n) objects no other source has") }
                for w in summary.warnings { print("warning: \(w)") }
            }
        } catch {
            throw fail(error)
        }
    }
}
