import ArgumentParser
import Foundation
import Seal
import Store

/// Where the operator reads backups from, and the key that opens them.
struct RepositoryOptions: ParsableArguments {

    @Option(name: .long, help: "A mirror's storage root (the directory holding one folder per client), a copy, or its operator WebDAV URL (http://…); give twice to complete one mirror from the other.")
    var from: [String] = []

    @Option(name: .long, help: "Operator account for WebDAV --from URLs.")
    var user: String?

    @Option(name: .long, help: "Password file of the operator account for WebDAV --from URLs.")
    var passwordFile: String?

    @Option(name: .long, help: "The client whose backups to read.")
    var client: String

    @Option(name: .long, help: "The operator's private key (PEM).")
    var key: String

    @Option(name: .long, help: "The key's certificate (default: recipient.pem beside the key, if present).")
    var cert: String?

    @Option(name: .long, help: "Read the key's passphrase from this file (first line).")
    var passphraseFile: String?

    func validate() throws {
        guard !from.isEmpty else { throw ValidationError("give at least one --from storage root") }
    }

    func openRepository() throws -> Repository {
        let cache = NSTemporaryDirectory() + "/fbk-fetch-\(getpid())"
        let sources = try from.enumerated().map { (i, f) in
            try makeRepositorySource(from: f, client: client, user: user, passwordFile: passwordFile, cacheDirectory: cache + "/\(i)")
        }
        let certificatePath = cert ?? ((key as NSString).deletingLastPathComponent + "/recipient.pem")
        let certificate = (cert != nil || FileManager.default.fileExists(atPath: certificatePath))
            ? try Certificate(contentsOf: certificatePath) : nil
        let text = (try? String(contentsOfFile: key, encoding: .utf8)) ?? ""
        let passphrase = text.contains("ENCRYPTED") ? try Passphrase.obtain(file: passphraseFile, prompt: "Passphrase for \(key): ") : nil
        let opener = try Opener(key: PrivateKey(contentsOf: key, passphrase: passphrase), certificate: certificate)
        let repository = try Repository(sources: sources, opener: opener, client: client)
        for w in repository.warnings { FileHandle.standardError.write(Data("fbk: warning: \(w)\n".utf8)) }
        return repository
    }
}

func printJSON<T: Encodable>(_ value: T) {
    let e = JSONEncoder()
    e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    print(String(decoding: try! e.encode(value), as: UTF8.self))
}
