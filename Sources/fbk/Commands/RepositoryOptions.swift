import ArgumentParser
import Foundation
import Seal
import Store

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
        let certificatePath = cert ?? ((key as NSString).deletingLastPathComponent + "/recipient.pem")
        let certificate = (cert != nil || FileManager.default.fileExists(atPath: certificatePath))
            ? try Certificate(contentsOf: certificatePath) : nil
        let text = (try? String(contentsOfFile: key, encoding: .utf8)) ?? ""
        let passphrase = text.contains("ENCRYPTED") ? try Passphrase.obtain(file: passphraseFile, prompt: "Passphrase for \(key): ") : nil
        return try Opener(key: PrivateKey(contentsOf: key, passphrase: passphrase), certificate: certificate)
    }
}

/// The mirrors' storage an operator reads from: local roots or operator WebDAV URLs.
struct SourceOptions: ParsableArguments {
    @Option(name: .long, help: "A mirror's storage root (the directory holding one folder per client), a copy, or its operator WebDAV URL (http://…); repeat to read several mirrors.")
    var from: [String] = []

    @Option(name: .long, help: "Operator account for WebDAV --from URLs.")
    var user: String?

    @Option(name: .long, help: "Password file of the operator account for WebDAV --from URLs.")
    var passwordFile: String?

    func validate() throws {
        guard !from.isEmpty else { throw ValidationError("give at least one --from storage root") }
    }

    /// One source per --from, in order; objects fetched over WebDAV are kept under `cache`.
    func sources(client: String, cache: String) throws -> [any RepositorySource] {
        try from.enumerated().map { (i, f) in
            try makeRepositorySource(from: f, client: client, user: user, passwordFile: passwordFile, cacheDirectory: cache + "/\(i)")
        }
    }
}

/// Where the operator reads backups from, and the key that opens them.
struct RepositoryOptions: ParsableArguments {
    @OptionGroup var source: SourceOptions

    @Option(name: .long, help: "The client whose backups to read.")
    var client: String

    @OptionGroup var operatorKey: OperatorKeyOptions

    func openRepository() throws -> Repository {
        let sources = try source.sources(client: client, cache: NSTemporaryDirectory() + "/fbk-fetch-\(getpid())")
        let repository = try Repository(sources: sources, opener: try operatorKey.opener(), client: client)
        for w in repository.warnings { FileHandle.standardError.write(Data("fbk: warning: \(w)\n".utf8)) }
        return repository
    }
}

func printJSON<T: Encodable>(_ value: T) {
    let e = JSONEncoder()
    e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    print(String(decoding: try! e.encode(value), as: UTF8.self))
}
