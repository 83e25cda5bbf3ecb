// Enrolling a client (operator side): its WebDAV password and secret, the
// bundle to copy to it, the htpasswd line for each mirror, and the entry
// for the check configuration.

internal import CLinux
import FoundationEssentials
import Glibc
import Seal
import Config
import Format
import Platform

public struct EnrollmentResult: Sendable {
    public var bundle: String
    package var htpasswdLine: String
    /// A shell command that makes `htpasswdLine` the client's only line in
    /// `file`: idempotent, and right for a rotation, where appending would
    /// leave the old line first (nginx uses the first match: 401 for ever).
    public func htpasswdCommand(file: String = "/etc/nginx/fbk.htpasswd") -> String {
        let user = String(htpasswdLine.prefix { $0 != ":" })
        let pattern = user.replacing(".", with: "\\.")
        return "sed -i '/^\(pattern):/d' \(file) && printf '%s\\n' '\(htpasswdLine)' >> \(file)"
    }
    public var checkEntry: String
    public var signingKey: String
    public var rotated: Bool
}

public enum Enrollment {
    /// Where an installed client keeps its files.
    public static let configDirectory = "/etc/fbk"
    public static let stateDirectory = "/var/lib/fbk"

    /// Writes `out/CLIENT/`: fbk.conf, recipient.pem, password, secret (0600),
    /// signing.pub, htpasswd (the line for every mirror), check-entry.yaml.
    /// - Parameter rotate: re-enroll an existing client: a new password, the same secret
    ///   (so the client keeps deduplicating against what it stored).
    public static func enroll(client: String, mirrors: [String], recipients: [String], paths: [String],
                              out: String, rotate: Bool) throws -> EnrollmentResult {
        guard ClientConfig.isValidClientName(client) else {
            throw StoreError(.config, "client name '\(client)' may contain only letters, digits, '.', '_' and '-'")
        }
        for r in recipients { try Certificate(contentsOf: r).checkUsableAsRecipient() }
        let bundle = out + "/" + client
        let exists = FileManager.default.fileExists(atPath: bundle + "/secret")
        if exists && !rotate {
            throw StoreError(.config, "\(client) is already enrolled (\(bundle)); give --rotate for a new password")
        }
        try FileManager.default.createDirectory(atPath: bundle, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let keys = exists ? try ClientKeys.load(path: bundle + "/secret") : try ClientKeys.create(path: bundle + "/secret")
        // 24 random bytes as 32 URL-safe characters.
        let password = Data(secureRandomBytes(24)).base64EncodedString()
            .replacing("+", with: "-").replacing("/", with: "_")
        let hash = try bcrypt(password)
        let line = "\(client):\(hash)"
        var config = ClientConfig(
            client: client, recipients: recipients.enumerated().map { configDirectory + "/recipient\($0.offset == 0 ? "" : String($0.offset)).pem" },
            secret: configDirectory + "/secret", state: stateDirectory,
            mirrors: mirrors.map { MirrorConfig(url: $0, user: $0.hasPrefix("file:") ? nil : client,
                                                passwordFile: $0.hasPrefix("file:") ? nil : configDirectory + "/password") },
            paths: paths)
        config.excludes = ["/var/cache/*", "/var/tmp/*", "*/lost+found", "/swapfile"]
        _ = try ClientConfig.parse(config.rendered(), file: "fbk.conf")
        try replace(bundle + "/fbk.conf", config.rendered(), mode: 0o600)
        for (i, r) in recipients.enumerated() {
            try replace(bundle + "/recipient\(i == 0 ? "" : String(i)).pem", try recipientText(r), mode: 0o644)
        }
        try replace(bundle + "/password", password + "\n", mode: 0o600)
        try replace(bundle + "/htpasswd", line + "\n", mode: 0o600)
        // The escrow, sealed here so the operator puts it on every mirror at
        // enrollment: a name known in advance is never left for someone else
        // to take first (the client's own upload then finds it there).
        let escrow = bundle + "/client-secret.cms"
        if !FileManager.default.fileExists(atPath: escrow) {
            let envelope = try Envelope(recipients: recipients.map { (r) throws(SealError) in try Certificate(contentsOf: r) })
            _ = try envelope.seal(Array((Hex.encode(keys.secret) + "\n").utf8), to: escrow)
        }
        let publicKey = keys.signingKey().publicKey.hex
        try replace(bundle + "/signing.pub", publicKey + "\n", mode: 0o644)
        let entry = """
              - name: \(client)
                kind: fbk
                signing_key: \(publicKey)
                max_age: 36h
            """
        try replace(bundle + "/check-entry.yaml", entry + "\n", mode: 0o644)
        return EnrollmentResult(bundle: bundle, htpasswdLine: line, checkEntry: entry, signingKey: publicKey, rotated: exists)
    }

    /// The kinds of device the contrib/ scripts serve.
    public enum Device: String, CaseIterable, Sendable {
        case openwrt, opnsense, generic

        /// Where the script reads its settings, and where its files go.
        var settingsPath: String { self == .opnsense ? "/usr/local/etc/fbk-device.conf" : "/etc/fbk-device.conf" }
        var fileDirectory: String { self == .opnsense ? "/usr/local/etc/fbk" : "/etc/fbk" }

        /// The blob kinds the script always uploads, each with the smallest
        /// size and the oldest age a healthy upload has.
        var fixedKinds: [(kind: String, minSize: String, maxAge: String)] {
            switch self {
            case .openwrt: [("sysupgrade", "1KB", "36h")]
            // A full stream on the first of the month (or with no base), incrementals on the other days.
            case .opnsense: [("conf", "1KB", "36h"), ("zfs-full", "1MB", "32d"), ("zfs-incr", "1B", "50h")]
            case .generic: []
            }
        }
    }

    /// The blob kind the OpenWrt script gives a flash partition, from a line
    /// of /proc/mtd (`mtd3: 00fa0000 00010000 "firmware"`): as
    /// contrib/openwrt/fbk-openwrt.sh names it.
    public static func flashKind(mtdLine: String) -> String? {
        guard let colon = mtdLine.firstIndex(of: ":"), let open = mtdLine.firstIndex(of: "\""),
              let close = mtdLine.lastIndex(of: "\""), open < close else { return nil }
        let device = mtdLine[..<colon]
        let name = mtdLine[mtdLine.index(after: open)..<close].lowercased().map { c -> Character in
            (c.isASCII && (c.isLetter || c.isNumber)) || c == "_" || c == "-" ? c : "_"
        }
        return "flash-\(device)-\(String(name))"
    }

    /// Enrolls a device that runs a contrib/ script instead of fbk: its
    /// WebDAV password, its settings file, and a check entry naming every
    /// blob kind that script uploads (`kind: device`).
    /// - Parameters:
    ///   - mtdTable: an OpenWrt device's /proc/mtd (copied off it), for its flash kinds.
    ///   - blobKinds: more kinds (required for `generic`).
    public static func enrollDevice(client: String, device: Device, mirrors: [String], recipients: [String],
                                    mtdTable: String?, blobKinds: [String], out: String, rotate: Bool) throws -> EnrollmentResult {
        guard ClientConfig.isValidClientName(client) else {
            throw StoreError(.config, "client name '\(client)' may contain only letters, digits, '.', '_' and '-'")
        }
        guard recipients.count == 1 else {
            throw StoreError(.config, "a device encrypts with openssl to one certificate: give one --recipient")
        }
        try Certificate(contentsOf: recipients[0]).checkUsableAsRecipient()
        var kinds = device.fixedKinds
        if let mtdTable {
            guard device == .openwrt else { throw StoreError(.config, "--mtd-table is for --device openwrt") }
            guard let text = try? String(contentsOfFile: mtdTable, encoding: .utf8) else {
                throw StoreError(.config, "cannot read \(mtdTable) (a copy of the router's /proc/mtd: ssh root@ROUTER cat /proc/mtd > \(mtdTable))")
            }
            // A dump is the whole partition: anything smaller is truncated.
            kinds += text.split(separator: "\n").dropFirst().compactMap { line -> (String, String, String)? in
                guard let kind = flashKind(mtdLine: String(line)) else { return nil }
                let fields = line.split(separator: " ")
                let size = fields.count > 1 ? Int(fields[1], radix: 16) : nil
                return (kind, size.map(String.init) ?? "1KB", "36h")
            }
        }
        kinds += blobKinds.map { ($0, "1B", "36h") }
        for k in kinds where k.kind.isEmpty || !k.kind.allSatisfy({ ($0.isASCII && ($0.isLowercase || $0.isNumber)) || $0 == "_" || $0 == "-" }) {
            throw StoreError(.config, "blob kind '\(k.kind)' may contain only lower-case letters, digits, '_' and '-'")
        }
        guard !kinds.isEmpty else {
            throw StoreError(.config, "a generic device needs its blob kinds: give --blob-kind KIND for each kind its script uploads")
        }
        let bundle = out + "/" + client
        let exists = FileManager.default.fileExists(atPath: bundle + "/password")
        if exists && !rotate {
            throw StoreError(.config, "\(client) is already enrolled (\(bundle)); give --rotate for a new password")
        }
        try FileManager.default.createDirectory(atPath: bundle, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let password = Data(secureRandomBytes(24)).base64EncodedString()
            .replacing("+", with: "-").replacing("/", with: "_")
        let line = "\(client):\(try bcrypt(password))"
        let files = device.fileDirectory
        let settings = """
            # fbk device settings for \(client) (\(device.rawValue)): contrib/fbk-device-lib.sh reads them.
            CLIENT=\(client)
            MIRRORS="\(mirrors.joined(separator: " "))"
            PASSWORD_FILE=\(files)/password
            RECIPIENT=\(files)/recipient.pem
            # Large streams are cut into parts this big, staged in TMP (RAM on OpenWrt: keep it small there).
            PART_SIZE=\(device == .openwrt ? 4_194_304 : 1_073_741_824)
            TMP=/tmp
            \(device == .opnsense ? "POOL=zroot\n" : "")
            """
        try replace(bundle + "/fbk-device.conf", settings, mode: 0o644)
        try replace(bundle + "/recipient.pem", try recipientText(recipients[0]), mode: 0o644)
        try replace(bundle + "/password", password + "\n", mode: 0o600)
        try replace(bundle + "/htpasswd", line + "\n", mode: 0o600)
        // Indented as an fbk client's entry, so both go under one `clients:`.
        let entry = (["  - name: \(client)", "    kind: device", "    blobs:"]
            + kinds.flatMap { ["      - kind: \($0.kind)", "        min_size: \($0.minSize)", "        max_age: \($0.maxAge)"] })
            .joined(separator: "\n")
        _ = try CheckConfig.parse("clients:\n" + entry + "\n", file: "check-entry.yaml")
        try replace(bundle + "/check-entry.yaml", entry + "\n", mode: 0o644)
        return EnrollmentResult(bundle: bundle, htpasswdLine: line, checkEntry: entry, signingKey: "", rotated: exists)
    }

    /// A bcrypt ($2b$, cost 12) hash of `password`, as htpasswd -B writes
    /// and nginx's auth_basic reads. The corresponding C functions are
    /// `crypt_gensalt_rn` and `crypt_r` (libxcrypt).
    package static func bcrypt(_ password: String) throws -> String {
        var entropy = secureRandomBytes(16).map { CChar(bitPattern: $0) }
        var salt = [CChar](repeating: 0, count: 64)
        guard crypt_gensalt_rn("$2b$", 12, &entropy, Int32(entropy.count), &salt, Int32(salt.count)) != nil else {
            throw StoreError(.config, "cannot make a bcrypt salt: \(String(cString: strerror(errno)))")
        }
        var data = crypt_data()
        guard let out = crypt_r(password, salt, &data), out.pointee != 0, out.pointee != 42 /* "*": failure token */ else {
            throw StoreError(.config, "bcrypt is not available in this system's libcrypt")
        }
        return String(cString: out)
    }

    /// A recipient certificate's file as it is, for the bundle (already
    /// checked as a certificate, so this read is bounded and never blocks).
    private static func recipientText(_ path: String) throws(StoreError) -> String {
        String(decoding: try readOperatorFile(path, limit: 1 << 20, what: "recipient certificate"), as: UTF8.self)
    }

    private static func replace(_ path: String, _ text: String, mode: mode_t) throws {
        try DurableFile.replace(path, with: Array(text.utf8), mode: mode)
    }
}
