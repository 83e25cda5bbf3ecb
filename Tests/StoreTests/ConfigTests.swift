import Foundation
@testable import Platform
@testable import Config
import Testing

@Suite struct ConfigTests {
    static let valid = """
        client: manning
        recipients: [/etc/fbk/recipient.pem]
        secret: /etc/fbk/secret
        state: /var/lib/fbk
        mirrors:
          - url: "http://[2001:db8::1]:8084/manning/"
            password_file: /etc/fbk/password
          - file:///srv/backup/manning/
        paths: [/]
        excludes: ["*.tmp"]
        pack_size: 8MiB
        """

    @Test func readsEveryFieldAndRoundTrips() throws {
        let c = try ClientConfig.parse(Self.valid, file: "fbk.conf")
        #expect(c.client == "manning")
        #expect(c.mirrors.count == 2)
        #expect(c.mirrors[0].url == "http://[2001:db8::1]:8084/manning/")
        #expect(c.mirrors[0].passwordFile == "/etc/fbk/password")
        #expect(c.mirrors[1].url == "file:///srv/backup/manning/")
        #expect(c.packSize == 8 << 20)
        #expect(c.excludes == ["*.tmp"])
        #expect(try ClientConfig.parse(c.rendered(), file: "x") == c)
    }

    @Test(arguments: [
        ("compresion_level: 3", 12, "unknown field 'compresion_level'"),
        ("spool_limit: lots", 12, "field 'spool_limit' must be a whole number"),
        ("required_mirrors: 3", 12, "required_mirrors must be between 1 and the number of mirrors (2)"),
        ("one_filesystem: maybe", 12, "one_filesystem' must be true or false"),
        ("chunker: {min: 1000, avg: 500}", 12, "average size 500"),
        ("compression_level: 30", 12, "compression_level must be in"),
    ])
    func badFieldsNameTheLine(_ extra: String, _ line: Int, _ fragment: String) {
        do {
            _ = try ClientConfig.parse(Self.valid + "\n" + extra + "\n", file: "fbk.conf")
            Issue.record("accepted \(extra)")
        } catch {
            #expect(error.message.hasPrefix("fbk.conf:\(line):"), "\(error.message)")
            #expect(error.message.contains(fragment), "\(error.message)")
        }
    }

    static let withS3 = valid.replacingOccurrences(of: "  - file:///srv/backup/manning/\n", with: """
          - url: s3://fbk-backups/fleet/manning/
            endpoint: https://s3.eu-central-1.amazonaws.com
            region: eu-central-1
            credentials_file: /etc/fbk/s3-credentials
            object_lock: compliance

        """)

    @Test func anS3MirrorReadsItsFieldsAndRoundTrips() throws {
        let c = try ClientConfig.parse(Self.withS3, file: "fbk.conf")
        let s3 = try #require(c.mirrors[1].s3)
        #expect(c.mirrors[1].url == "s3://fbk-backups/fleet/manning/")
        #expect(s3.endpoint == "https://s3.eu-central-1.amazonaws.com" && s3.region == "eu-central-1" && !s3.virtualHost)
        #expect(s3.credentialsFile == "/etc/fbk/s3-credentials")
        #expect(s3.objectLock == .init(mode: .compliance, days: 21), "the reuse horizon (14 days) plus a week")
        #expect(try ClientConfig.parse(c.rendered(), file: "x") == c)
    }

    @Test(arguments: [
        ("    endpoint: https://s3.eu-central-1.amazonaws.com\n", "needs endpoint"),
        ("    credentials_file: /etc/fbk/s3-credentials\n", "needs endpoint"),
        ("    object_lock: compliance\n", "object_lock_days without object_lock"),
    ])
    func anS3MirrorNeedsItsFields(_ dropped: String, _ fragment: String) {
        var text = Self.withS3
        if dropped.contains("object_lock:") { text = text.replacingOccurrences(of: "object_lock: compliance\n", with: "object_lock: compliance\n    object_lock_days: 21\n") }
        text = text.replacingOccurrences(of: dropped.contains("endpoint") ? "    endpoint: https://s3.eu-central-1.amazonaws.com\n" : dropped, with: "")
        do {
            _ = try ClientConfig.parse(text, file: "fbk.conf")
            Issue.record("accepted without \(dropped)")
        } catch {
            #expect(error.message.contains(fragment), "\(error.message)")
        }
    }

    @Test func anS3LockShorterThanTheReuseHorizonIsRefused() {
        for (extra, fragment) in [("object_lock_days: 13", "from the reuse horizon (14)"), ("object_lock_days: 3\nreuse_horizon: 2d", nil),
                                  ("addressing: sideways", "path or virtual")] as [(String, String?)] {
            let lines = extra.split(separator: "\n")
            var text = Self.withS3.replacingOccurrences(of: "    object_lock: compliance\n", with: "    object_lock: compliance\n    \(lines[0])\n")
            if lines.count > 1 { text += "\n" + lines[1] + "\n" }
            do {
                let c = try ClientConfig.parse(text, file: "fbk.conf")
                #expect(fragment == nil, "accepted \(extra)")
                #expect(c.mirrors[1].s3?.objectLock?.days == 3)
            } catch {
                #expect(fragment.map { error.message.contains($0) } == true, "\(extra): \(error.message)")
            }
        }
        let onWebDAV = Self.valid.replacingOccurrences(of: "password_file: /etc/fbk/password", with: "password_file: /etc/fbk/password\n    region: x")
        #expect(throws: StoreError.self) { try ClientConfig.parse(onWebDAV, file: "f") }
    }

    @Test func missingAndMalformedEssentialsAreErrors() {
        let noRecipients = Self.valid.replacingOccurrences(of: "recipients: [/etc/fbk/recipient.pem]", with: "recipients: []")
        let badMirror = Self.valid.replacingOccurrences(of: "file:///srv", with: "ftp:///srv")
        let relative = Self.valid.replacingOccurrences(of: "paths: [/]", with: "paths: [etc]")
        let noClient = Self.valid.replacingOccurrences(of: "client: manning\n", with: "")
        for (text, fragment) in [(noRecipients, "no recipient certificate"), (badMirror, "must start with http://"),
                                 (relative, "absolute paths"), (noClient, "missing field 'client'"), ("[1, 2", "not valid YAML")] {
            #expect(throws: StoreError.self) { try ClientConfig.parse(text, file: "f") }
            do { _ = try ClientConfig.parse(text, file: "f") } catch { #expect(error.message.contains(fragment), "\(error.message)") }
        }
    }
}
