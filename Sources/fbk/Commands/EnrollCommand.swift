import ArgumentParser
import FoundationEssentials
import Glibc
import Platform
import Config
import Enrollment

/// `fbk enroll`: the operator's side of adding a client.
struct EnrollCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "enroll",
        abstract: "Enroll a client: its password, secret, a bundle to install on it, and the lines for the mirrors and the check.",
        discussion: """
            Writes OUT/CLIENT/: fbk.conf, recipient.pem, password and secret \
            (mode 0600), signing.pub, client-secret.cms (the secret sealed to the \
            recipients, for keys/ on every mirror), htpasswd (the client's line in every \
            mirror's /etc/nginx/fbk.htpasswd: the printed command replaces an older \
            one, which a rotation must do, since nginx uses the first line that matches) and check-entry.yaml (to add to \
            /etc/fbk/check.conf). Copy the bundle to the client and run \
            /usr/share/fbk/deploy/install-client.sh BUNDLE there (the fbk package \
            installs it). Re-enrolling refuses unless --rotate, \
            which makes a new password and keeps the secret.

            Each mirror URL names the client's own directory, e.g. \
            http://[2001:db8::1]:8084/CLIENT/.

            Example:
              fbk enroll manning --mirror http://[2001:db8::1]:8084/manning/ \\
                --mirror http://[2001:db8::2]:8084/manning/ --recipient ~/fbk-keys/recipient.pem --out ~/fbk-clients
            """
    )

    @Argument(help: "The client's name (its directory on the mirrors and its WebDAV user).")
    var client: String
    @Option(name: .long, help: "Mirror URL of the client's directory; repeat.")
    var mirror: [String] = []
    @Option(name: .long, help: "Operator certificate; repeat for several.")
    var recipient: [String] = []
    @Option(name: .long, help: "Absolute path the client backs up; repeat (default: /).")
    var path: [String] = []
    @Option(name: .long, help: "Directory for the bundles.")
    var out: String = "."
    @Flag(name: .long, help: "Re-enroll an existing client with a new password (same secret).")
    var rotate = false
    @Option(name: .long, help: "Enroll a device that runs a contrib/ script instead of fbk: openwrt, opnsense or generic.")
    var device: String?
    @Option(name: .long, help: "With --device openwrt: a copy of the router's /proc/mtd, so the check expects a dump of each flash partition.")
    var mtdTable: String?
    @Option(name: .long, help: "With --device: a further blob kind the device uploads; repeat (generic devices need at least one).")
    var blobKind: [String] = []

    func validate() throws {
        guard !mirror.isEmpty else { throw ValidationError("give at least one --mirror") }
        if let device, Enrollment.Device(rawValue: device) == nil {
            throw ValidationError("--device must be one of: \(Enrollment.Device.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        for m in mirror {
            guard m.hasPrefix("http://") || m.hasPrefix("https://") || m.hasPrefix("file:///") else {
                throw ValidationError("--mirror \(m) must start with http://, https:// or file:///")
            }
            if let problem = ClientConfig.urlProblem(m) { throw ValidationError("--mirror \(m) \(problem)") }
        }
        if device == nil && (mtdTable != nil || !blobKind.isEmpty) {
            throw ValidationError("--mtd-table and --blob-kind go with --device")
        }
        guard !recipient.isEmpty else { throw ValidationError("give at least one --recipient certificate") }
        for m in mirror where !m.hasSuffix("/\(client)/") && !m.hasSuffix("/\(client)") {
            throw ValidationError("--mirror \(m) must name the client's own directory (…/\(client)/)")
        }
    }

    func run() throws {
        if let device = device.flatMap(Enrollment.Device.init(rawValue:)) {
            do { try enrollDevice(device) } catch { throw fail(error) }
            return
        }
        do {
            let r = try Enrollment.enroll(client: client, mirrors: mirror, recipients: recipient,
                                          paths: path.isEmpty ? ["/"] : path, out: out, rotate: rotate)
            print("""
                \(r.rotated ? "re-enrolled" : "enrolled") \(client): bundle in \(r.bundle)
                on each mirror, set the client's htpasswd line (replacing any older one), create its directory and put its escrowed secret there:
                  \(r.htpasswdCommand())
                  install -d -o www-data -g www-data -m 0750 /srv/fbk/\(client) /srv/fbk/\(client)/keys
                  install -o www-data -g www-data -m 0640 \(r.bundle)/client-secret.cms /srv/fbk/\(client)/keys/client-secret.cms
                """ + (r.rotated ? """
                then put only the new password on the client (its configuration and secret stay as they are):
                  install -m 0600 \(r.bundle)/password /etc/fbk/password
                """ : """
                add to the check configuration (/etc/fbk/check.conf, under clients:):
                \(r.checkEntry)
                then copy \(r.bundle) to the client and, with the fbk package installed there, run
                  /usr/share/fbk/deploy/install-client.sh \(PathName.name(r.bundle))
                (from a source tree: deploy/install-client.sh \(PathName.name(r.bundle)) .build/release/fbk).
                """))
        } catch {
            throw fail(error)
        }
    }

    /// A device: its bundle, what to run on each mirror, and where each file goes on it.
    private func enrollDevice(_ device: Enrollment.Device) throws {
        let r = try Enrollment.enrollDevice(client: client, device: device, mirrors: mirror, recipients: recipient,
                                            mtdTable: mtdTable, blobKinds: blobKind, out: out, rotate: rotate)
        let steps: String
        switch device {
        case .openwrt:
            steps = """
                on the router (OpenWrt; scp -O where scp lacks SFTP):
                  scp \(r.bundle)/fbk-device.conf root@ROUTER:/etc/fbk-device.conf
                  ssh root@ROUTER mkdir -p /etc/fbk /usr/lib/fbk
                  scp \(r.bundle)/password \(r.bundle)/recipient.pem root@ROUTER:/etc/fbk/
                  scp contrib/fbk-device-lib.sh root@ROUTER:/usr/lib/fbk/
                  scp contrib/openwrt/fbk-openwrt.sh root@ROUTER:/usr/bin/fbk-openwrt.sh
                  ssh root@ROUTER 'chmod 600 /etc/fbk/password; opkg update && opkg install curl openssl-util; echo "0 3 * * * FBK_DEVICE_LIB=/usr/lib/fbk/fbk-device-lib.sh /usr/bin/fbk-openwrt.sh" >> /etc/crontabs/root; /etc/init.d/cron restart'
                """
        case .opnsense:
            steps = """
                on the firewall (OPNsense):
                  scp \(r.bundle)/fbk-device.conf root@FIREWALL:/usr/local/etc/fbk-device.conf
                  ssh root@FIREWALL mkdir -p /usr/local/etc/fbk /usr/local/opnsense/scripts/fbk
                  scp \(r.bundle)/password \(r.bundle)/recipient.pem root@FIREWALL:/usr/local/etc/fbk/
                  scp contrib/fbk-device-lib.sh root@FIREWALL:/usr/local/opnsense/scripts/
                  scp contrib/opnsense/fbk-opnsense.sh root@FIREWALL:/usr/local/opnsense/scripts/fbk/
                  scp contrib/opnsense/actions_fbk.conf root@FIREWALL:/usr/local/opnsense/service/conf/actions.d/
                  ssh root@FIREWALL 'chmod 600 /usr/local/etc/fbk/password; service configd restart'
                then add a daily cron job for the action "fbk backup" in System > Settings > Cron.
                """
        case .generic:
            steps = """
                on the device: /etc/fbk-device.conf, /etc/fbk/password (mode 0600) and /etc/fbk/recipient.pem
                from \(r.bundle), contrib/fbk-device-lib.sh, and a script that calls fbk_setup, then
                fbk_blob KIND (one object) or fbk_parts KIND (a large stream) for each of: \(blobKind.joined(separator: ", ")),
                then fbk_finish; run it daily from cron.
                """
        }
        print("""
            \(r.rotated ? "re-enrolled" : "enrolled") device \(client) (\(device.rawValue)): bundle in \(r.bundle)
            on each mirror, set the device's htpasswd line (replacing any older one) and create its directory:
              \(r.htpasswdCommand())
              install -d -o www-data -g www-data -m 0750 /srv/fbk/\(client)
            """ + (r.rotated ? """
            then put only the new password on the device (\(device == .opnsense ? "/usr/local/etc/fbk" : "/etc/fbk")/password, mode 0600).
            """ : """
            add to the check configuration (/etc/fbk/check.conf, under clients:):
            \(r.checkEntry)
            \(steps)
            """))
    }
}
