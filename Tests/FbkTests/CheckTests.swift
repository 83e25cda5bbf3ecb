import Foundation
import Seal
import Format
import Testing
import TestSupport

@Suite(.hangGuard) struct CheckTests {
    /// Fresh random bytes (each call different, so nothing deduplicates).
    func random(_ n: Int) -> [UInt8] { sampleBytes(n, seed: UInt64.random(in: 1...UInt64.max)) }

    func config(_ f: SnapshotFixture, extra: String = "", growth: String = "1GB") throws -> String {
        let key = try String(contentsOfFile: f.dir.file("etc/signing.pub"), encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let text = """
            clients:
              - name: c1
                kind: fbk
                signing_key: \(key)
                max_age: 36h
                expected_full_size: 5MB
                expected_daily_growth: \(growth)
            \(extra)
            """
        return try f.dir.write("check.conf", Array(text.utf8))
    }

    func check(_ f: SnapshotFixture, _ config: String, _ extra: [String] = []) throws -> (status: Int32, report: [String: Any], text: String) {
        let r = try CLI.run(["check", "--config", config, "--root", f.mirrors[0].storageRoot, "--json"] + extra)
        let json = (try? JSONSerialization.jsonObject(with: r.stdoutBytes)) as? [String: Any] ?? [:]
        return (r.status, json, r.stdout + r.stderr)
    }

    func findings(_ report: [String: Any], _ client: String = "c1") -> [String] {
        let clients = report["clients"] as? [[String: Any]] ?? []
        let c = clients.first { $0["client"] as? String == client } ?? [:]
        return (c["findings"] as? [[String: Any]] ?? []).map { "\($0["level"] ?? ""): \($0["message"] ?? "")" }
    }

    @Test func aCompleteRepositoryPassesAndMetricsAreWritten() throws {
        let f = try SnapshotFixture()
        try f.dir.write("src/a", random(1 << 20))
        #expect(try f.snapshot().status == 0)
        let prom = f.dir.file("fbk.prom")
        let r = try check(f, try config(f), ["--deep", "--prometheus", prom])
        #expect(r.status == 0, "\(r.text)")
        #expect(r.report["status"] as? String == "OK")
        let metrics = try String(contentsOfFile: prom, encoding: .utf8)
        #expect(metrics.contains("fbk_check_status{client=\"c1\"} 0"))
        #expect(metrics.contains("fbk_packs_missing{client=\"c1\"} 0"))
        #expect(metrics.contains("fbk_newest_backup_age_seconds{client=\"c1\"}"))
    }

    /// install-server.sh makes /srv/fbk/.incoming for nginx's upload
    /// temporaries: the layout the project's own script makes checks clean.
    @Test func theInstallScriptsUploadDirectoryIsNoStranger() throws {
        let f = try SnapshotFixture()
        try f.dir.write("src/a", random(1 << 20))
        #expect(try f.snapshot().status == 0)
        try FileManager.default.createDirectory(atPath: f.mirrors[0].storageRoot + "/.incoming", withIntermediateDirectories: true)
        let r = try check(f, try config(f))
        #expect(r.status == 0, "\(r.text)")
        #expect((r.report["strangers"] as? [String] ?? []).isEmpty)
        let installer = try String(contentsOfFile: repositoryRoot + "/deploy/install-server.sh", encoding: .utf8)
        #expect(installer.contains("/srv/fbk/.incoming"))
    }

    @Test func damageToPacksAndCatalogsIsNamed() throws {
        let f = try SnapshotFixture()
        for i in 0..<4 { try f.dir.write("src/f\(i)", random(600_000)) }
        #expect(try f.snapshot().status == 0)
        let packs = f.objects(0).filter { $0.hasSuffix(".pack") }.sorted()
        #expect(packs.count >= 3)
        unlink(f.path(0, packs[0]))                                                    // deleted
        truncate(f.path(0, packs[1]), 100)                                              // truncated
        var bytes = [UInt8](FileManager.default.contents(atPath: f.path(0, packs[2]))!)  // one byte changed
        bytes[bytes.count / 2] ^= 1
        try Data(bytes).write(to: URL(fileURLWithPath: f.path(0, packs[2])))
        let conf = try config(f)
        let shallow = try check(f, conf)
        #expect(shallow.status == 2)
        let s = findings(shallow.report).joined(separator: "\n")
        #expect(s.contains(packs[0] + " missing"), "\(s)")
        #expect(s.contains(packs[1] + " is 100 bytes"), "\(s)")
        #expect(!s.contains(packs[2]), "a changed byte is found only by --deep")
        let deep = findings(try check(f, conf, ["--deep"]).report).joined(separator: "\n")
        #expect(deep.contains(packs[2]), "\(deep)")

        // A snapshot without its catalog is named as half-uploaded.
        let catalog = f.objects(0).first { $0.hasSuffix(".catalog") }!
        unlink(f.path(0, catalog))
        let half = findings(try check(f, conf).report).joined(separator: "\n")
        #expect(half.contains("has no catalog"), "\(half)")
    }

    @Test func staleNeverUploadedForgedAndStrangersAreFlagged() throws {
        let f = try SnapshotFixture()
        try f.dir.write("src/a", random(100_000))
        #expect(try f.snapshot().status == 0)
        for o in f.objects(0) { setModificationTime(f.path(0, o), daysAgo: 3) }
        let conf = try config(f, extra: """
              - name: ghost
                kind: fbk
                signing_key: \(String(repeating: "ab", count: 32))
            """)
        // A catalog written by someone else into the client's directory.
        let other = try ClientKeys(secret: secureRandomBytes(32)).signingKey()
        let forged = Catalog(client: "c1", snapshot: "20260101T000000Z-00000000000000ff", created: "x",
                             record: .init(path: "snapshots/20260101T000000Z-00000000000000ff.snapshot", size: 1, sha256: "00"),
                             packs: [], addedBytes: 0, signingKey: other.publicKey.hex)
        try Data(SignedDocument.encode(forged, key: other)).write(to: URL(fileURLWithPath: f.path(0, ObjectName.catalog(forged.snapshot).path)))
        try FileManager.default.createDirectory(atPath: f.mirrors[0].storageRoot + "/unknown-host", withIntermediateDirectories: true)
        try Data([1, 2]).write(to: URL(fileURLWithPath: f.path(0, "notes.txt")))
        let r = try check(f, conf)
        #expect(r.status == 2)
        let c1 = findings(r.report).joined(separator: "\n")
        #expect(c1.contains("stale"), "\(c1)")
        #expect(c1.contains("not signed by c1's enrolled key"), "\(c1)")
        #expect(c1.contains("stranger: notes.txt"), "\(c1)")
        #expect(findings(r.report, "ghost").joined().contains("never uploaded"))
        #expect((r.report["strangers"] as? [String] ?? []).contains("unknown-host"))
    }

    @Test func anOversizedDayIsFlagged() throws {
        let f = try SnapshotFixture()
        try f.dir.write("src/a", random(20_000))
        #expect(try f.snapshot().status == 0)
        for o in f.objects(0) { setModificationTime(f.path(0, o), daysAgo: 1) }
        try f.dir.write("src/b", random(2 << 20))
        #expect(try f.snapshot().status == 0)
        let r = try check(f, try config(f, growth: "50KB"))
        #expect(r.status == 1, "\(r.text)")
        #expect(findings(r.report).joined().contains("over 10 times the expected"), "\(findings(r.report))")
    }

    @Test func deviceBlobsTooOldOrTooSmall() throws {
        let f = try SnapshotFixture()
        let root = f.mirrors[0].storageRoot
        try FileManager.default.createDirectory(atPath: root + "/wifi/blobs", withIntermediateDirectories: true)
        try Data(random(5000)).write(to: URL(fileURLWithPath: root + "/wifi/blobs/sysupgrade-20261126T030000Z.cms"))
        try Data(random(100)).write(to: URL(fileURLWithPath: root + "/wifi/blobs/flash-20261126T030000Z.cms"))
        setModificationTime(root + "/wifi/blobs/flash-20261126T030000Z.cms", daysAgo: 3)
        let conf = try f.dir.write("check.conf", Array("""
            clients:
              - name: wifi
                kind: device
                max_age: 36h
                blobs:
                  - kind: sysupgrade
                    min_size: 1KB
                  - kind: flash
                    min_size: 1MB
            """.utf8))
        let r = try check(f, conf)
        #expect(r.status == 2)
        let w = findings(r.report, "wifi").joined(separator: "\n")
        #expect(w.contains("flash blob arrived"), "\(w)")
        #expect(w.contains("less than the expected minimum"), "\(w)")
        #expect(!w.contains("sysupgrade"), "\(w)")
    }

    @Test func objectsOnOneMirrorOnlyAreListedAndSynced() throws {
        let f = try SnapshotFixture()
        try f.dir.write("src/a", random(1 << 20))
        #expect(try f.snapshot().status == 0)
        let lost = f.objects(1).first { $0.hasSuffix(".pack") }!
        unlink(f.path(1, lost))
        let conf = try config(f)
        let r = try check(f, conf, ["--second-root", f.mirrors[1].storageRoot])
        #expect(r.status == 1)
        #expect(findings(r.report).joined().contains("1 objects only on"))
        let sync = try CLI.run(["mirror-sync", f.mirrors[0].storageRoot, f.mirrors[1].storageRoot, "--client", "c1"])
        #expect(sync.status == 0)
        #expect(sync.stdout.contains("c1: 1 objects copied"))
        #expect(FileManager.default.contents(atPath: f.path(1, lost)) == FileManager.default.contents(atPath: f.path(0, lost)))
        #expect(try check(f, conf, ["--second-root", f.mirrors[1].storageRoot]).status == 0)
    }

    @Test func systemdUnitsVerify() throws {
        let r = try verifySystemdUnits(["fbk-check.service", "fbk-check.timer"], binary: CLI.binary.path)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(!r.stderr.contains("Unknown"), "\(r.stderr)")
    }
}
