import ArgumentParser
import Foundation
import Store

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
            deploy/install-client.sh there. Re-enrolling refuses unless --rotate, \
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

    func validate() throws {
        guard !mirror.isEmpty else { throw ValidationError("give at least one --mirror") }
        guard !recipient.isEmpty else { throw ValidationError("give at least one --recipient certificate") }
        for m in mirror where !m.hasSuffix("/\(client)/") && !m.hasSuffix("/\(client)") {
            throw ValidationError("--mirror \(m) must name the client's own directory (…/\(client)/)")
        }
    }

    func run() throws {
        do {
            let r = try Enrollment.enroll(client: client, mirrors: mirror, recipients: recipient,
                                          paths: path.isEmpty ? ["/"] : path, out: out, rotate: rotate)
            print("""
                \(r.rotated ? "re-enrolled" : "enrolled") \(client): bundle in \(r.bundle)
                on each mirror, set the client's htpasswd line (replacing any older one), create its directory and put its escrowed secret there:
                  \(r.htpasswdCommand())
                  install -d -o www-data -g www-data -m 0750 /srv/fbk/\(client) /srv/fbk/\(client)/keys
                  install -o www-data -g www-data -m 0640 \(r.bundle)/client-secret.cms /srv/fbk/\(client)/keys/client-secret.cms
                add to the check configuration (/etc/fbk/check.conf, under clients:):
                \(r.checkEntry)
                then copy \(r.bundle) to the client and run deploy/install-client.sh there.
                """)
        } catch {
            throw fail(error)
        }
    }
}
