import ArgumentParser
import Foundation
import Seal

/// `fbk decrypt`: one CMS object back to plaintext.
struct DecryptCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "decrypt",
        abstract: "Decrypt one CMS object (a pack, a device blob) with the private key.",
        discussion: """
            Reads DER, PEM or S/MIME CMS objects: what fbk writes \
            (AuthEnvelopedData, AES-256-GCM) and what `openssl cms -encrypt` or \
            `openssl smime -encrypt` write on devices (EnvelopedData, AES-CBC: \
            unauthenticated, so a warning is printed). Plaintext appears at --out \
            (or on standard output) only after decryption and authentication \
            succeeded; a damaged object leaves nothing behind.

            --cert defaults to recipient.pem beside the key; with it, an object \
            not encrypted to this key is reported as such.

            Device blobs (FORMAT.md section 12): a single blob decrypts to what the \
            device sent (an OpenWrt sysupgrade archive: restore with sysupgrade \
            -r; an OPNsense /conf tarball: tar -xzf). A set of parts decrypts part \
            by part, in the order its manifest lists; concatenated, they are the \
            flash image or the zfs send stream (zfs receive it, after the full \
            set an incremental is based on).

            Example:
              fbk decrypt --key ~/fbk-keys/private.pem --out router-config.tar.gz wifi.lab-sysupgrade-20261127T030000Z.cms
            """
    )

    @OptionGroup var operatorKey: OperatorKeyOptions

    @Option(name: .long, help: "Write the plaintext here instead of standard output (never overwrites).")
    var out: String?

    @Argument(help: "The encrypted object.")
    var object: String

    func run() throws {
        do {
            if let out, FileManager.default.fileExists(atPath: out) {
                throw CLIError(message: "\(out) exists; fbk decrypt never overwrites", status: ExitStatus.cannotCreate)
            }
            guard FileManager.default.isReadableFile(atPath: object) else {
                throw CLIError(message: "cannot read \(object)", status: ExitStatus.noInput)
            }
            let opener = try operatorKey.opener()
            let protection: ContentProtection
            if let out {
                protection = try opener.open(fileAt: object, to: out)
            } else {
                // Authenticate completely before a single byte reaches stdout.
                let temporary = NSTemporaryDirectory() + "/fbk-decrypt-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
                defer { unlink(temporary) }
                protection = try opener.open(fileAt: object, to: temporary)
                try copyToStandardOutput(temporary)
            }
            if protection == .unauthenticated {
                FileHandle.standardError.write(Data(
                    "fbk: warning: \(object) is \(protection.rawValue): its integrity was not checked\n".utf8))
            }
        } catch {
            throw fail(error)
        }
    }

    private func copyToStandardOutput(_ path: String) throws {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw CLIError(message: "cannot read back \(path)", status: ExitStatus.software)
        }
        defer { try? handle.close() }
        while let data = try handle.read(upToCount: 1 << 20), !data.isEmpty {
            FileHandle.standardOutput.write(data)
        }
    }
}
