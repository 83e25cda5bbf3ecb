import ArgumentParser
import FoundationEssentials
import Glibc
import Seal
import Platform

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
            set an incremental is based on). Give the set's .manifest as OBJECT \
            and fbk does that in one go: it checks each part's size and SHA-256 \
            against the manifest (which also covers parts sealed without \
            authentication), decrypts it, and appends it to --out, asking the \
            passphrase once.

            Example:
              fbk decrypt --key ~/fbk-keys/private.pem --out router-config.tar.gz /srv/fbk/wifi.lab/blobs/sysupgrade-20261127T030000Z-0123456789abcdef.cms
              fbk decrypt --key ~/fbk-keys/private.pem --out zroot.zfs /srv/fbk/fw/blobs/zfs-full-20261201T030000Z-0123456789abcdef.manifest
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
            if object.hasSuffix(".manifest") {
                try decryptSet(opener)
                return
            }
            let protection: ContentProtection
            if let out {
                protection = try opener.open(fileAt: object, to: out)
            } else {
                // Authenticate completely before a single byte reaches stdout.
                let scratch = try PrivateDirectory(prefix: "fbk-decrypt")
                defer { scratch.remove() }
                protection = try opener.open(fileAt: object, to: scratch.path + "/plain", durable: false)
                _ = try copyFile(scratch.path + "/plain", to: 1)
            }
            if protection == .unauthenticated {
                writeStandardError(
                    "fbk: warning: \(object) is \(protection.rawValue): its integrity was not checked\n")
            }
        } catch {
            throw fail(error)
        }
    }

    /// A device's set of parts (FORMAT.md 12): every part checked against
    /// the manifest, decrypted, and appended in order. A part that is
    /// missing, of another size or hash, or does not decrypt stops it with
    /// 65, and a partial --out is removed.
    private func decryptSet(_ opener: Opener) throws {
        let manifest = try readBounded(object, limit: 1 << 20, what: "manifest")
        let lines = String(decoding: manifest, as: UTF8.self).split(separator: "\n").map(String.init)
        guard lines.first == "fbk-blob-manifest 1", let last = lines.last, last.hasPrefix("parts "),
              let count = Int(last.dropFirst(6)), count == lines.count - 2, count > 0 else {
            throw StoreError(.integrity, "\(object) is not a blob manifest (FORMAT.md 12)")
        }
        let stem = String(object.dropLast(".manifest".count))
        let scratch = try PrivateDirectory(prefix: "fbk-decrypt")
        defer { scratch.remove() }
        let output: Int32
        if let out {
            output = open(out, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
            guard output >= 0 else { throw CLIError(message: "cannot create \(out): \(String(cString: strerror(errno)))", status: ExitStatus.cannotCreate) }
        } else {
            output = 1
        }
        defer { if out != nil { close(output) } }
        var total = 0
        do {
            for (i, line) in lines.dropFirst().dropLast().enumerated() {
                let f = line.split(separator: " ")
                guard f.count == 4, f[0] == "part", Int(f[1]) == i + 1, let size = Int(f[2]) else {
                    throw StoreError(.integrity, "\(object): line \(i + 2) is not 'part \(i + 1) SIZE SHA256'")
                }
                let part = stem + String(cFormat: ".part%04ld.cms", i + 1)
                let (digest, actual) = try SHA256.hash(fileAt: part)
                guard actual == size, digest.hex == f[3] else {
                    throw StoreError(.integrity, "\(part) is not the part the manifest lists (size \(actual), not \(size), or another SHA-256): damaged or replaced")
                }
                let plain = scratch.path + "/part"
                _ = try opener.open(fileAt: part, to: plain, durable: false)
                total += try copyFile(plain, to: output)
                unlink(plain)
            }
            if out != nil, fsync(output) != 0 {
                throw StoreError(.io, "cannot write \(out!): \(String(cString: strerror(errno)))")
            }
        } catch {
            if let out { unlink(out) }
            throw error
        }
        writeStandardError("fbk: \(count) parts checked against \(object) and decrypted: \(total) bytes\(out.map { " in " + $0 } ?? "")\n")
    }
}
