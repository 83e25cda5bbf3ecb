import ArgumentParser
import FoundationEssentials
import Glibc
import Seal
import Platform
import Format
import Backend
import Config
import Restorer

/// The operator's private key, its certificate and its passphrase.
struct OperatorKeyOptions: ParsableArguments {
    @Option(name: .long, help: "The operator's private key (PEM, PKCS#8).")
    var key: String

    @Option(name: .long, help: "The key's certificate (default: recipient.pem beside the key, if present).")
    var cert: String?

    @Option(name: .long, help: "Read the key's passphrase from this file (first line).")
    var passphraseFile: String?

    /// Loads the key (asking for its passphrase only if it is encrypted) and
    /// its certificate, so "not encrypted to this key" is a precise error.
    func opener() throws -> Opener {
        let keyDirectory = PathName.parent(key)
        let certificatePath = cert ?? ((keyDirectory.isEmpty ? "." : keyDirectory) + "/recipient.pem")
        let certificate = (cert != nil || FileManager.default.fileExists(atPath: certificatePath))
            ? try Certificate(contentsOf: certificatePath) : nil
        // A file that cannot be read is reported by PrivateKey below, as key material.
        let text = String(decoding: (try? readOperatorFile(key, limit: 1 << 20, what: "private key")) ?? [], as: UTF8.self)
        let passphrase = text.contains("ENCRYPTED") ? try Passphrase.obtain(file: passphraseFile, prompt: "Passphrase for \(key): ") : nil
        return try Opener(key: PrivateKey(contentsOf: key, passphrase: passphrase), certificate: certificate)
    }
}

/// How an operator command reaches `s3://BUCKET/PREFIX/` storage.
struct S3Options: ParsableArguments {
    @Option(name: .customLong("s3-endpoint"), help: "For s3:// storage: the service, http(s)://HOST[:PORT].")
    var endpoint: String?

    @Option(name: .customLong("s3-region"), help: "For s3:// storage: the bucket's region.")
    var region = "us-east-1"

    @Option(name: .customLong("s3-credentials"), help: "For s3:// storage: a file with aws_access_key_id = … and aws_secret_access_key = … (a client's: deploy/s3/client-policy.json; an operator's: operator-policy.json; prune's: prune-policy.json).")
    var credentials: String?

    @Flag(name: .customLong("s3-virtual-host"), help: "For s3:// storage: address the bucket as BUCKET.HOST (default: HOST/BUCKET).")
    var virtualHost = false

    @Option(name: .customLong("s3-object-lock"), help: "For objects written to s3:// storage: Object Lock, compliance or governance (the bucket must have Object Lock).")
    var objectLock: String?

    @Option(name: .customLong("s3-object-lock-days"), help: "With --s3-object-lock: days each object stays locked (default: the reuse horizon plus 7).")
    var objectLockDays: Int?

    /// The fields of an s3:// mirror in fbk.conf.
    var mirrorFields: [String: String] {
        var f = ["region": region]
        if let endpoint { f["endpoint"] = endpoint }
        if let credentials { f["credentials_file"] = credentials }
        if virtualHost { f["addressing"] = "virtual" }
        if let objectLock { f["object_lock"] = objectLock }
        if let objectLockDays { f["object_lock_days"] = String(objectLockDays) }
        return f
    }

    /// The settings, when an s3:// location needs them.
    func settings(for locations: [String]) throws -> S3Settings? {
        guard locations.contains(where: { $0.hasPrefix("s3://") }) else { return nil }
        guard endpoint != nil, credentials != nil else {
            throw ValidationError("s3:// storage needs --s3-endpoint URL and --s3-credentials FILE")
        }
        do {
            // The same rules as a mirror in fbk.conf, with the default reuse horizon.
            return try ClientConfig.s3Settings(fields: mirrorFields, reuseHorizon: ClientConfig.defaultReuseHorizon, what: "the --s3-… options") {
                StoreError(.config, $0)
            }
        } catch {
            throw ValidationError(error.message)
        }
    }
}

/// The mirrors' storage an operator reads from: local roots, operator WebDAV URLs or S3 buckets.
struct SourceOptions: ParsableArguments {
    @Option(name: .long, help: "A mirror's storage root (the directory holding one folder per client), a copy, its operator WebDAV URL (http://…) or its bucket (s3://BUCKET/PREFIX/); repeat to read several mirrors.")
    var from: [String] = []

    @Option(name: .long, help: "Operator account for WebDAV --from URLs.")
    var user: String?

    @Option(name: .long, help: "Password file of the operator account for WebDAV --from URLs.")
    var passwordFile: String?

    @OptionGroup var s3: S3Options

    func validate() throws {
        guard !from.isEmpty else { throw ValidationError("give at least one --from storage root") }
        _ = try s3.settings(for: from)
    }

    /// One backend per --from, in order, read with the operator account.
    func sources(client: String) throws -> [any Backend] {
        let settings = try s3.settings(for: from)
        return try from.map { try makeReader(from: $0, client: client, user: user, passwordFile: passwordFile, s3: settings) }
    }
}

/// Who the client is, as the operator recorded it at enrollment: never
/// taken from the storage being read.
struct IdentityOptions: ParsableArguments {
    @Option(name: .long, help: "The client's signing public key: its signing.pub from enrollment, or the 64 hex digits.")
    var signingKey: String?

    @Option(name: .long, help: "The check configuration holding the client's signing_key (e.g. /etc/fbk/check.conf).")
    var checkConfig: String?

    @Option(name: .long, help: "The client secret from its enrollment bundle (bundles/CLIENT/secret): pins the client without the escrow.")
    var secret: String?

    @Flag(name: .long, help: "DANGEROUS: believe the escrowed secret the storage holds, for an operator who lost the enrollment bundle. A server that replaced it can make forged snapshots look genuine.")
    var trustStorageIdentity = false

    /// The identity to verify against, from the first option given.
    /// - Throws: `CLIError` (usage) when none is given, naming what to give.
    func identity(client: String) throws -> ClientIdentity {
        if let secret {
            let keys = try ClientKeys.load(path: secret)
            if let pinned = try pinnedKey(client: client), pinned != keys.signingKey().publicKey {
                throw CLIError(message: "\(secret) is not the secret of the client whose signing key is \(pinned.hex)", status: ExitStatus.usage)
            }
            return .secret(keys)
        }
        if let pinned = try pinnedKey(client: client) { return .signingKey(pinned) }
        if trustStorageIdentity { return .escrowUnpinned }
        throw CLIError(message: """
            the client's identity is not pinned: give --signing-key bundles/\(client)/signing.pub (or --check-config /etc/fbk/check.conf, \
            or --secret bundles/\(client)/secret), so that only snapshots the client signed are believed; \
            without the enrollment bundle, --trust-storage-identity believes whatever the storage holds
            """, status: ExitStatus.usage)
    }

    private func pinnedKey(client: String) throws -> VerifyingKey? {
        if let signingKey {
            let text = FileManager.default.fileExists(atPath: signingKey)
                ? String(decoding: try readOperatorFile(signingKey, limit: 4096, what: "signing key"), as: UTF8.self) : signingKey
            guard let raw = Hex.decode(text.trimmingWhitespace()), let key = try? VerifyingKey(raw: raw) else {
                throw CLIError(message: "--signing-key \(signingKey) is neither a signing.pub file nor 64 hex digits", status: ExitStatus.usage)
            }
            return key
        }
        if let checkConfig {
            let config = try CheckConfig.load(path: checkConfig)
            guard let key = config.clients.first(where: { $0.name == client })?.signingKey else {
                throw CLIError(message: "\(checkConfig) has no fbk client \(client) with a signing_key", status: ExitStatus.usage)
            }
            return key
        }
        return nil
    }
}

/// Where the operator reads backups from, and the key that opens them.
struct RepositoryOptions: ParsableArguments {
    @OptionGroup var source: SourceOptions

    @Option(name: .long, help: "The client whose backups to read.")
    var client: String

    @OptionGroup var identity: IdentityOptions

    @Flag(name: .long, help: "Believe records dated after the server received them (a client whose clock runs ahead); they are still ordered by their signed start times.")
    var acceptFutureDated = false

    @OptionGroup var operatorKey: OperatorKeyOptions

    /// Opens the repository; objects fetched over WebDAV go into a private
    /// directory of each source (mode 0700), removed with it.
    func openRepository() throws -> Repository {
        let pinned = try identity.identity(client: client)
        let sources = try source.sources(client: client)
        let repository = try Repository(sources: sources, opener: try operatorKey.opener(), client: client, identity: pinned,
                                        acceptFutureDated: acceptFutureDated)
        for w in repository.warnings { writeStandardError("fbk: warning: \(w.terminalSafe)\n") }
        for r in repository.rejected { writeStandardError("fbk: REFUSED: \(r.terminalSafe)\n") }
        return repository
    }
}

func printJSON<T: Encodable>(_ value: T) {
    let e = JSONEncoder()
    e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    print(String(decoding: try! e.encode(value), as: UTF8.self))
}
