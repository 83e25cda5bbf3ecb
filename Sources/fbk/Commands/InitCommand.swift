import ArgumentParser
import FoundationEssentials
import Glibc
import Seal
import Platform
import Format
import Config
import Index

/// `fbk init`: a client's configuration, secret and empty index.
struct InitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Write a client configuration, create its secret and an empty index.",
        discussion: """
            Every field of the configuration has a flag, so scripts need no editor. \
            The client secret (32 random bytes, mode 0600) keys chunk IDs, the \
            chunker and the client's signing key; its public signing key is \
            printed and written beside the configuration as signing.pub, for the \
            operator to record (fbk check verifies catalogs with it).

            Example:
              fbk init --config /etc/fbk/fbk.conf --client manning \\
                --recipient /etc/fbk/recipient.pem \\
                --mirror http://[2001:db8::1]:8084/manning/ --mirror http://[2001:db8::2]:8084/manning/ \\
                --password-file /etc/fbk/password --state /var/lib/fbk /
            """
    )

    @Option(name: .long, help: "Configuration file to write (never overwritten).")
    var config: String = ClientConfig.defaultPath
    @Option(name: .long, help: "Client name: its directory on the mirrors and its WebDAV user.")
    var client: String
    @Option(name: .long, help: "Operator certificate (PEM) to encrypt to; repeat for several.")
    var recipient: [String] = []
    @Option(name: .long, help: "Mirror URL of this client's directory (http(s)://, s3://BUCKET/PREFIX/CLIENT/ with --s3-endpoint and --s3-credentials, or file:///); repeat.")
    var mirror: [String] = []
    @Option(name: .long, help: "WebDAV password file for the http(s) mirrors (mode 0600).")
    var passwordFile: String?
    @OptionGroup var s3: S3Options
    @Option(name: .long, help: "WebDAV user (default: the client name).")
    var user: String?
    @Option(name: .long, help: "State directory: index, spool, lock.")
    var state: String
    @Option(name: .long, help: "Client secret file to create (default: 'secret' beside the configuration).")
    var secret: String?
    @Option(name: .long, help: "Exclude pattern (fnmatch on the full path, or on the name if it has no '/'); repeat.")
    var exclude: [String] = []
    @Option(name: .long, help: "How many mirrors must hold a snapshot for it to count.")
    var requiredMirrors: Int = 1
    @Option(name: .long, help: "zstd level, 1-19.")
    var compressionLevel: Int32 = defaultCompressionLevel
    @Option(name: .long, help: "Target pack size in bytes.")
    var packSize: Int = 16 << 20
    @Option(name: .long, help: "Spool limit in bytes for objects a mirror missed.")
    var spoolLimit: Int = 4 << 30
    @Option(name: .long, help: "Host name recorded in snapshots (default: this machine's).")
    var host: String?
    @Flag(name: .long, help: "Back up across filesystem boundaries.")
    var crossFilesystems = false
    @Option(name: .long, help: "Seconds between progress lines when not on a terminal.")
    var logInterval: Int = 60
    @Option(name: .long, help: "Seconds to wait for a mirror's TCP connection.")
    var connectTimeout: Int = 10
    @Option(name: .long, help: "Seconds a mirror transfer may stall (under 1 KiB/s) before it is abandoned.")
    var stallTimeout: Int = 30
    @Option(name: .long, help: "Delay in seconds before each retry after a transient mirror failure; repeat (default 1, 2, 4).")
    var retryDelay: [Double] = []
    @Option(name: .long, help: "Chunker minimum size in bytes (changes cut points: only for a new client).")
    var chunkerMin: Int?
    @Option(name: .long, help: "Chunker average size in bytes.")
    var chunkerAvg: Int?
    @Option(name: .long, help: "Chunker maximum size in bytes.")
    var chunkerMax: Int?
    @Option(name: .long, help: "Chunker window in bytes.")
    var chunkerWindow: Int?
    @Argument(help: "Absolute paths to back up.")
    var paths: [String]

    func run() throws {
        do {
            guard !FileManager.default.fileExists(atPath: config) else {
                throw CLIError(message: "\(config) exists; fbk init never overwrites a configuration", status: ExitStatus.cannotCreate)
            }
            guard !recipient.isEmpty else { throw CLIError(message: "give at least one --recipient certificate", status: ExitStatus.usage) }
            guard !mirror.isEmpty else { throw CLIError(message: "give at least one --mirror", status: ExitStatus.usage) }
            for r in recipient { try Certificate(contentsOf: r).checkUsableAsRecipient() }
            let directory = PathName.parent(config)
            let secretPath = secret ?? (directory.isEmpty ? "secret" : directory + "/secret")
            var c = ClientConfig(
                client: client, recipients: recipient.map(absolute), secret: absolute(secretPath), state: absolute(state),
                mirrors: mirror.map { MirrorConfig(url: $0, user: $0.hasPrefix("file:") ? nil : user,
                                                   passwordFile: $0.hasPrefix("file:") ? nil : passwordFile.map(absolute)) },
                paths: paths)
            for i in c.mirrors.indices where c.mirrors[i].url.hasPrefix("s3://") {
                let fields = s3.mirrorFields
                c.mirrors[i].user = nil
                c.mirrors[i].passwordFile = nil
                c.mirrors[i].s3 = try ClientConfig.s3Settings(url: c.mirrors[i].url, fields: fields, reuseHorizon: c.reuseHorizon) {
                    StoreError(.config, "--mirror \(c.mirrors[i].url): \($0)")
                }
            }
            c.host = host
            c.excludes = exclude
            c.requiredMirrors = requiredMirrors
            c.compressionLevel = compressionLevel
            c.packSize = packSize
            c.spoolLimit = spoolLimit
            c.oneFilesystem = !crossFilesystems
            c.logInterval = logInterval
            c.connectTimeout = connectTimeout
            c.stallTimeout = stallTimeout
            if !retryDelay.isEmpty { c.retryDelays = retryDelay }
            c.chunker.minimumSize = chunkerMin ?? c.chunker.minimumSize
            c.chunker.averageSize = chunkerAvg ?? c.chunker.averageSize
            c.chunker.maximumSize = chunkerMax ?? c.chunker.maximumSize
            c.chunker.windowSize = chunkerWindow ?? c.chunker.windowSize
            // Round-trip through the parser: what init writes, snapshot reads.
            let text = c.rendered()
            _ = try ClientConfig.parse(text, file: config)

            try FileManager.default.createDirectory(atPath: c.state, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
            if !directory.isEmpty {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            }
            let keys = FileManager.default.fileExists(atPath: c.secret)
                ? try ClientKeys.load(path: c.secret) : try ClientKeys.create(path: c.secret)
            if !FileManager.default.fileExists(atPath: c.indexPath) { _ = try Index.create(path: c.indexPath) }
            try createNewFile(config, text, mode: 0o600)
            let publicKey = keys.signingKey().publicKey.hex
            let publicPath = (directory.isEmpty ? "" : directory + "/") + "signing.pub"
            if !FileManager.default.fileExists(atPath: publicPath) { try createNewFile(publicPath, publicKey + "\n", mode: 0o644) }
            print("""
                wrote \(config)
                client secret: \(c.secret)
                index: \(c.indexPath)
                signing public key (record it in the check configuration): \(publicKey)
                """)
        } catch {
            throw fail(error)
        }
    }

    private func absolute(_ path: String) -> String {
        path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
    }
}
