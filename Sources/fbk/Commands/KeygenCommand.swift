import ArgumentParser
import FoundationEssentials
import Glibc
import Seal

/// `fbk keygen`: the operator's key pair.
struct KeygenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keygen",
        abstract: "Make the operator's key pair: recipient.pem for clients, private.pem for restores.",
        discussion: """
            Writes DIR/recipient.pem, a self-signed certificate that is the only \
            thing clients receive, and DIR/private.pem, the private key encrypted \
            with a passphrase (PKCS#8, PBKDF2-HMAC-SHA256 with 600000 iterations, \
            AES-256-CBC). Both files are created mode 0600 and never overwritten. \
            Keep private.pem offline: whoever has it and its passphrase can read \
            every backup.

            The passphrase comes from --passphrase-file, else FBK_PASSPHRASE, \
            else a prompt on the terminal (asked twice); it must have at least 12 \
            characters unless --allow-short-passphrase is given.

            Example:
              fbk keygen --out ~/fbk-keys --type rsa4096 --subject "/CN=backup operator/O=Foulab"
            """
    )

    @Option(name: .long, help: "Directory to write recipient.pem and private.pem into (created if missing).")
    var out: String

    @Option(name: .long, help: "Key type: rsa4096 or p384.")
    var type: String = KeyType.rsa4096.rawValue

    @Option(name: .long, help: "Certificate subject, /CN=…/O=… or plain text for the CN.")
    var subject: String = "fbk backup operator"

    @Option(name: .long, help: "Read the passphrase from this file (first line).")
    var passphraseFile: String?

    @Flag(name: .long, help: "Accept a passphrase shorter than \(Self.minimumPassphrase) characters (for throwaway keys only).")
    var allowShortPassphrase = false

    /// The private key guards every backup: a short passphrase falls to an
    /// offline guess in days even at 600000 PBKDF2 iterations.
    static let minimumPassphrase = 12

    func validate() throws {
        guard KeyType(rawValue: type) != nil else {
            throw ValidationError("--type must be one of: \(KeyType.allCases.map(\.rawValue).joined(separator: ", "))")
        }
    }

    func run() throws {
        do {
            let certificatePath = out + "/recipient.pem"
            let keyPath = out + "/private.pem"
            for path in [certificatePath, keyPath] where FileManager.default.fileExists(atPath: path) {
                throw CLIError(message: "\(path) exists; fbk keygen never overwrites a key (choose another --out)",
                               status: ExitStatus.cannotCreate)
            }
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
            let passphrase = try Passphrase.obtain(file: passphraseFile, prompt: "Passphrase for the new private key: ",
                                                   confirm: true)
            guard !passphrase.isEmpty else {
                throw CLIError(message: "the passphrase is empty; a private key is never written unprotected",
                               status: ExitStatus.usage)
            }
            let length = String(decoding: passphrase, as: UTF8.self).count
            guard length >= Self.minimumPassphrase || allowShortPassphrase else {
                throw CLIError(message: "the passphrase has \(length) characters; the key that opens every backup needs at least \(Self.minimumPassphrase) (a few random words), or give --allow-short-passphrase for a throwaway key",
                               status: ExitStatus.usage)
            }
            let pair = try generateKeyPair(type: KeyType(rawValue: type)!, subject: subject, passphrase: passphrase)
            try createNewFile(keyPath, pair.privateKeyPEM, mode: 0o600)
            try createNewFile(certificatePath, pair.certificatePEM, mode: 0o600)
            let certificate = try Certificate(contentsOf: certificatePath)
            print("""
                wrote \(certificatePath) (give this to clients)
                wrote \(keyPath) (keep offline)
                subject: \(certificate.subject)
                key: \(certificate.keyDescription)
                sha256 fingerprint: \(certificate.fingerprint)
                """)
        } catch {
            throw fail(error)
        }
    }
}
