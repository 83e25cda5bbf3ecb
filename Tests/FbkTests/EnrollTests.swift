import Foundation
import Testing
import TestSupport

@Suite(.timeLimit(.minutes(10))) struct EnrollTests {
    @Test func enrollInstallAndSnapshotWithTheGeneratedCredentials() throws {
        let dir = try TemporaryDirectory()
        let keygen = try CLI.run(["keygen", "--out", dir.file("keys"), "--type", "p384", "--allow-short-passphrase"], environment: ["FBK_PASSPHRASE": "pw"])
        #expect(keygen.status == 0)
        // Two mirrors whose only accounts are another client's; the new one's line is appended below.
        let mirrors = [try NginxMirror(users: ["other": "other-pw"]), try NginxMirror(users: ["other": "other-pw"])]
        try dir.write("src/file", Array("enrolled and installed".utf8))
        let enroll = try CLI.run(["enroll", "newbox", "--mirror", mirrors[0].url("newbox"), "--mirror", mirrors[1].url("newbox"),
                                  "--recipient", dir.file("keys/recipient.pem"), "--path", dir.file("src"), "--out", dir.file("bundles")])
        #expect(enroll.status == 0, "\(enroll.stderr)")
        let bundle = dir.file("bundles/newbox")
        for (name, mode) in [("secret", 0o600), ("password", 0o600), ("fbk.conf", 0o600), ("recipient.pem", 0o644)] {
            let attributes = try FileManager.default.attributesOfItem(atPath: bundle + "/" + name)
            #expect(attributes[.posixPermissions] as? Int == mode, "\(name)")
        }
        let line = try String(contentsOfFile: bundle + "/htpasswd", encoding: .utf8)
        #expect(line.hasPrefix("newbox:$2b$12$"))
        for m in mirrors {
            let h = m.prefix.file("htpasswd")
            try (try String(contentsOfFile: h, encoding: .utf8) + line).write(toFile: h, atomically: true, encoding: .utf8)
        }
        // Enrolling again refuses; --rotate keeps the secret.
        let secret = try String(contentsOfFile: bundle + "/secret", encoding: .utf8)
        #expect(try CLI.run(["enroll", "newbox", "--mirror", mirrors[0].url("newbox"), "--recipient", dir.file("keys/recipient.pem"),
                             "--out", dir.file("bundles")]).status == 64)

        // Install into a temporary root.
        let root = dir.file("root")
        let install = try runTool(repositoryRoot + "/deploy/install-client.sh", [bundle, CLI.binary.path], environment: ["DESTDIR": root])
        #expect(install.status == 0, "\(install.stderr)")
        for (path, mode) in [("/etc/fbk/secret", 0o600), ("/etc/fbk/password", 0o600), ("/var/lib/fbk", 0o700),
                             ("/etc/systemd/system/fbk-snapshot.timer", 0o644), ("/usr/local/bin/fbk", 0o755)] {
            let attributes = try FileManager.default.attributesOfItem(atPath: root + path)
            #expect(attributes[.posixPermissions] as? Int == mode, "\(path)")
        }
        #expect(!FileManager.default.fileExists(atPath: root + "/etc/fbk/htpasswd"))
        #expect(try String(contentsOfFile: root + "/etc/fbk/secret", encoding: .utf8) == secret)

        // The rendered configuration works for a real snapshot.
        let snap = try CLI.run(["snapshot", "--config", root + "/etc/fbk/fbk.conf", "--json"])
        #expect(snap.status == 0, "\(snap.stdout) \(snap.stderr)")
        #expect(FileManager.default.fileExists(atPath: mirrors[0].storageRoot + "/newbox/keys/client-secret.cms"))
        #expect(FileManager.default.fileExists(atPath: mirrors[1].storageRoot + "/newbox/keys/client-secret.cms"))

        // The generated credentials cannot write into another client's directory.
        let password = try String(contentsOfFile: bundle + "/password", encoding: .utf8).trimmingCharacters(in: .newlines)
        let intrude = try runTool("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "-u", "newbox:" + password, "-T", root + "/etc/fbk/signing.pub",
                                           mirrors[0].url("other") + "planted.pack"])
        #expect(String(decoding: intrude.stdout, as: UTF8.self) == "403")

        // Rotation: a new password, the same secret.
        let rotate = try CLI.run(["enroll", "newbox", "--mirror", mirrors[0].url("newbox"), "--recipient", dir.file("keys/recipient.pem"),
                                  "--out", dir.file("bundles"), "--rotate"])
        #expect(rotate.status == 0)
        // A rotation changes the password only: no reinstall (which would reset the client's paths), no second check entry.
        #expect(rotate.stdout.contains("install -m 0600 \(bundle)/password /etc/fbk/password"), "\(rotate.stdout)")
        #expect(!rotate.stdout.contains("add to the check configuration") && !rotate.stdout.contains("install-client.sh"))
        #expect(try String(contentsOfFile: bundle + "/secret", encoding: .utf8) == secret)
        #expect(try String(contentsOfFile: bundle + "/password", encoding: .utf8).trimmingCharacters(in: .newlines) != password)
        // The printed command, run on each mirror as printed, replaces the old line: the client's next run works.
        let command = try #require(rotate.stdout.split(separator: "\n").first { $0.contains("sed -i") })
            .trimmingCharacters(in: .whitespaces)
        for m in mirrors {
            let run = try runTool("sh", ["-c", command.replacingOccurrences(of: "/etc/nginx/fbk.htpasswd", with: m.prefix.file("htpasswd"))])
            #expect(run.status == 0, "\(run.stderr)")
            let lines = try String(contentsOfFile: m.prefix.file("htpasswd"), encoding: .utf8).split(separator: "\n")
            #expect(lines.filter { $0.hasPrefix("newbox:") }.count == 1 && lines.contains { $0.hasPrefix("other:") })
        }
        try FileManager.default.removeItem(atPath: root + "/etc/fbk/password")
        try FileManager.default.copyItem(atPath: bundle + "/password", toPath: root + "/etc/fbk/password")
        try dir.write("src/after-rotation", Array("new".utf8))
        let after = try CLI.run(["snapshot", "--config", root + "/etc/fbk/fbk.conf", "--json"])
        #expect(after.status == 0, "\(after.stdout) \(after.stderr)")
    }

    @Test func clientUnitsVerify() throws {
        let r = try verifySystemdUnits(["fbk-snapshot.service", "fbk-snapshot.timer"], binary: CLI.binary.path)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(!r.stderr.contains("Unknown"), "\(r.stderr)")
    }
}
