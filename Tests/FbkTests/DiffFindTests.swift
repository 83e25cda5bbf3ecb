import Foundation
import Testing
import TestSupport

/// `fbk diff` and `fbk find`: from the snapshots' trees alone, offline,
/// with the private key.
@Suite(.hangGuard) struct DiffFindTests {
    func fbk(_ f: SnapshotFixture, _ command: String, _ args: [String]) throws -> CLI.Result {
        try CLI.run([command, "--from", f.mirrors[0].storageRoot, "--client", "c1", "--signing-key", f.dir.file("etc/signing.pub"),
                     "--key", f.keysDirectory + "/private.pem"] + args, environment: ["FBK_PASSPHRASE": f.passphrase])
    }

    func json(_ r: CLI.Result) -> [[String: Any]] { (try? JSONSerialization.jsonObject(with: r.stdoutBytes)) as? [[String: Any]] ?? [] }

    @Test func diffNamesWhatWasAddedRemovedAndChanged() throws {
        let f = try SnapshotFixture()
        try f.dir.write("src/etc/nginx.conf", Array("worker_processes 1;\n".utf8))
        try f.dir.write("src/etc/old.conf", Array("old\n".utf8))
        try f.dir.write("src/var/big", sampleBytes(200_000, seed: 1))
        try f.dir.write("src/same/unchanged", Array("same\n".utf8))
        let first = try #require(try f.snapshot().summary["snapshot"] as? String)
        try f.dir.write("src/etc/nginx.conf", Array("worker_processes 4;\n".utf8))
        try FileManager.default.removeItem(atPath: f.source + "/etc/old.conf")
        try f.dir.write("src/etc/new.conf", Array("new\n".utf8))
        chmod(f.source + "/var/big", 0o600)
        sleep(2)   // past the files cache's settle time, so the second run sees the changes
        #expect(try f.snapshot().status == 0)

        let r = try fbk(f, "diff", [first, "latest", String(f.source.dropFirst()), "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let rel = String(f.source.dropFirst()) + "/"
        var changes: [String: String] = [:]
        for c in json(r) { changes[(c["path"] as? String ?? "").replacingOccurrences(of: rel, with: "")] = c["change"] as? String }
        #expect(changes["etc/nginx.conf"] == "M", "\(changes)")
        #expect(changes["etc/old.conf"] == "-" && changes["etc/new.conf"] == "+", "\(changes)")
        #expect(changes["var/big"] == "U", "a mode change is metadata only: \(changes)")
        #expect(changes["same/unchanged"] == nil && changes["same"] == nil, "an unchanged tree is skipped whole: \(changes)")
        let text = try fbk(f, "diff", [first, "latest"])
        #expect(text.stdout.contains("1 added, 1 removed, 1 changed"), "\(text.stdout)")
        let missing = try fbk(f, "diff", [first, "latest", "no/such/dir"])
        #expect(missing.status == 64, "\(missing.stderr)")
    }

    @Test func findSaysWhichSnapshotsHoldAPath() throws {
        let f = try SnapshotFixture()
        try f.dir.write("src/etc/nginx.conf", Array("one\n".utf8))
        let first = try #require(try f.snapshot().summary["snapshot"] as? String)
        try f.dir.write("src/etc/nginx.conf", Array("two, longer\n".utf8))
        try f.dir.write("src/etc/extra.conf", Array("x\n".utf8))
        sleep(2)
        let second = try #require(try f.snapshot().summary["snapshot"] as? String)

        let byName = json(try fbk(f, "find", ["nginx.conf", "--json"]))
        #expect(byName.map { $0["snapshot"] as? String } == [second, first], "newest first: \(byName)")
        #expect(byName.map { $0["size"] as? Int } == [12, 4])
        let byPath = json(try fbk(f, "find", [String(f.source.dropFirst()) + "/etc/*.conf", "--json"]))
        #expect(byPath.count == 3, "\(byPath)")
        let one = json(try fbk(f, "find", ["*.conf", "--snapshot", first, "--json"]))
        #expect(one.count == 1 && one[0]["snapshot"] as? String == first)
        let none = try fbk(f, "find", ["nothing-like-this"])
        #expect(none.status == 0 && none.stderr.contains("no match"))
    }
}
