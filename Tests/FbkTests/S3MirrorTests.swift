import Foundation
import Backend
import Format
import Platform
import Testing
import TestSupport

/// fbk with S3-compatible mirrors (moto_server with deploy/s3's IAM
/// policies enforced, S3Server): a client whose credentials may only
/// create, Object Lock on what it writes, and every operator command with
/// operator credentials: restore, check, index rebuild, mirror-sync, prune.
@Suite(.serialized, .hangGuard) struct S3MirrorTests {
    final class Client: @unchecked Sendable {
        let s3: S3Server
        let dir: TemporaryDirectory
        let passphrase = "s3 passphrase"
        var configPath: String { dir.file("etc/fbk.conf") }
        var source: String { dir.file("src") }

        /// A client `c1` with the given mirrors (`init` arguments after --mirror …).
        init(_ s3: S3Server, mirrors: [String]) throws {
            self.s3 = s3
            dir = try TemporaryDirectory()
            try FileManager.default.createDirectory(atPath: source, withIntermediateDirectories: true)
            let keygen = try CLI.run(["keygen", "--out", dir.file("keys"), "--type", "p384"], environment: ["FBK_PASSPHRASE": passphrase])
            guard keygen.status == 0 else { throw FixtureError("keygen: \(keygen.stderr)") }
            let r = try CLI.run(["init", "--config", configPath, "--client", "c1", "--recipient", dir.file("keys/recipient.pem"),
                                 "--state", dir.file("state")] + mirrors + [source])
            guard r.status == 0 else { throw FixtureError("init: \(r.stderr)") }
        }

        func snapshot(_ environment: [String: String] = [:]) throws -> (status: Int32, summary: [String: Any], stderr: String) {
            let r = try CLI.run(["snapshot", "--config", configPath, "--json"], environment: environment)
            return (r.status, (try? JSONSerialization.jsonObject(with: r.stdoutBytes)) as? [String: Any] ?? [:], r.stderr)
        }

        /// The --s3-* options of an operator command, with one of the fixture's users.
        func s3Options(_ user: String = "fbk-operator") -> [String] {
            ["--s3-endpoint", s3.endpoint, "--s3-credentials", s3.credentials(user)]
        }

        var signingKey: String { (try? String(contentsOfFile: dir.file("etc/signing.pub"), encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "" }

        func checkConfig(_ retention: String) throws -> String {
            try dir.write("check.conf", Array("""
                clients:
                  - name: c1
                    kind: fbk
                    signing_key: \(signingKey)
                    retention:
                \(retention)

                """.utf8))
        }

        func restore(from: [String], _ extra: [String] = []) throws -> (status: Int32, out: String, target: String) {
            let target = dir.file("restored-" + UUID().uuidString.prefix(6))
            let r = try CLI.run(["restore"] + from.flatMap { ["--from", $0] } + extra
                                + ["--client", "c1", "--signing-key", dir.file("etc/signing.pub"), "--key", dir.file("keys/private.pem"),
                                   "latest", "--target", target], environment: ["FBK_PASSPHRASE": passphrase])
            return (r.status, r.stdout + r.stderr, target)
        }

        /// The client's directory read with operator (or other) credentials.
        func reader(_ root: String, user: String = "fbk-operator") throws -> S3Backend {
            try S3Backend(storageRoot: root, client: "c1", settings: S3Settings(endpoint: s3.endpoint, credentialsFile: s3.credentials(user)))
        }
    }

    /// One WebDAV mirror (fbk's nginx) and one S3 mirror with Object Lock:
    /// a snapshot is safe on both, a rerun uploads no pack again, a restore
    /// reads either, the key-less check and an index rebuild read the bucket.
    @Test func aMixedFleetSnapshotsRestoresChecksAndRebuildsFromS3() throws {
        let s3 = try S3Server.shared()
        let nginx = try NginxMirror(users: ["c1": "client-pw"])
        let pwDir = try TemporaryDirectory()
        let pw = try pwDir.write("pw", Array("client-pw\n".utf8))
        chmod(pw, 0o600)
        let root = s3.root(prefix: "mixed-" + UUID().uuidString.prefix(6).lowercased())
        let c = try Client(s3, mirrors: ["--mirror", nginx.url("c1"), "--password-file", pw, "--mirror", root + "c1/",
                                         "--s3-endpoint", s3.endpoint, "--s3-credentials", s3.credentials("fbk-client"),
                                         "--s3-object-lock", "compliance"])
        let config = try String(contentsOfFile: c.configPath, encoding: .utf8)
        #expect(config.contains("object_lock: compliance") && config.contains("object_lock_days: 21"), "\(config)")
        try c.dir.write("src/a", sampleBytes(400_000, seed: 11))
        try c.dir.write("src/sub/b", Array("mixed fleet\n".utf8))
        let first = try c.snapshot()
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.summary["safe_mirrors"] as? Int == 2, "\(first.summary)")

        let operatorView = try c.reader(root)
        let packs = try operatorView.list(.pack)
        #expect(!packs.isEmpty)
        // Every object is locked for object_lock_days from the upload; the prune account cannot remove it.
        let pruner = try c.reader(root, user: "fbk-prune")
        let until = try #require(try pruner.retainedUntil(packs[0].path))
        #expect(abs(until.timeIntervalSinceNow - 21 * 86_400) < 3_600, "retained until \(until)")
        #expect(throws: BackendError.self) { try pruner.delete(packs[0].path) }
        #expect(try operatorView.exists(packs[0].path), "a locked object stays")

        // A rerun with nothing changed uploads no file's data again: at most the pack of its directory trees.
        let again = try c.snapshot()
        #expect(again.status == 0, "\(again.stderr)")
        let afterRerun = try operatorView.list(.pack)
        #expect(Set(afterRerun.map(\.path)).isSuperset(of: packs.map(\.path)) && afterRerun.count <= packs.count + 1)
        #expect(afterRerun.filter { !packs.contains($0) }.allSatisfy { $0.size < 16_384 }, "\(afterRerun)")
        #expect(try operatorView.list(.catalog).count == 2)

        for from in [[root], [nginx.operatorURL]] {
            let r = try c.restore(from: from, from[0].hasPrefix("s3://") ? c.s3Options() : ["--user", "operator", "--password-file", try pwDir.write("op", Array("operator-pw".utf8))])
            #expect(r.status == 0, "\(from): \(r.out)")
            let same = FileManager.default.contents(atPath: r.target + c.source + "/a").map([UInt8].init) == sampleBytes(400_000, seed: 11)
            #expect(same, "\(from)")
        }
        // A client's credentials cannot read its own backups back.
        let denied = try c.restore(from: [root], ["--s3-endpoint", s3.endpoint, "--s3-credentials", s3.credentials("fbk-client")])
        #expect(denied.status != 0 && denied.out.contains("403"), "\(denied.out)")

        let conf = try c.checkConfig("      keep_within: 20d\n      keep_last: 3")
        let check = try CLI.run(["check", "--config", conf, "--root", root, "--json"] + c.s3Options())
        #expect(check.status == 0, "\(check.stdout) \(check.stderr)")

        // The WebDAV mirror's check through its operator port, and a copy of it into a second bucket prefix.
        let op = try pwDir.write("op", Array("operator-pw".utf8))
        let davCheck = try CLI.run(["check", "--config", conf, "--root", nginx.operatorURL, "--user", "operator", "--password-file", op])
        #expect(davCheck.status == 0, "\(davCheck.stdout) \(davCheck.stderr)")
        let copy = s3.root(prefix: "copy-" + UUID().uuidString.prefix(6).lowercased())
        let sync = try CLI.run(["mirror-sync", nginx.operatorURL, copy, "--client", "c1", "--user", "operator", "--password-file", op] + c.s3Options())
        #expect(sync.status == 0, "\(sync.stdout) \(sync.stderr)")
        #expect(try c.reader(copy).inventory().objects.map(\.path) == (try operatorView.inventory().objects.map(\.path)))

        let out = c.dir.file("rebuilt.sqlite")
        let rebuild = try CLI.run(["index", "rebuild", "--client", "c1", "--secret", c.dir.file("etc/secret"),
                                   "--from", root, "--mirror-url", root + "c1/", "--out", out, "--json"] + c.s3Options())
        #expect(rebuild.status == 0, "\(rebuild.stdout) \(rebuild.stderr)")
    }

    /// One mirror down never stops the backup, whatever its kind: a bucket
    /// that cannot be reached gets what it missed at the next run, from the
    /// spool, while the WebDAV mirror holds every snapshot.
    @Test func aBucketThatWasDownIsBackFilled() throws {
        let s3 = try S3Server.shared()
        let nginx = try NginxMirror(users: ["c1": "client-pw"])
        let pwDir = try TemporaryDirectory()
        let pw = try pwDir.write("pw", Array("client-pw\n".utf8))
        chmod(pw, 0o600)
        let root = s3.root(prefix: "down-" + UUID().uuidString.prefix(6).lowercased())
        let dead = "http://127.0.0.1:\(try freePort())"
        let c = try Client(s3, mirrors: ["--mirror", nginx.url("c1"), "--password-file", pw, "--mirror", root + "c1/",
                                         "--s3-endpoint", dead, "--s3-credentials", s3.credentials("fbk-client")])
        try c.dir.write("src/a", sampleBytes(150_000, seed: 41))
        let down = try c.snapshot()
        #expect(down.status == 4, "safe on one of two mirrors: \(down.stderr)")
        #expect(down.summary["safe_mirrors"] as? Int == 1, "\(down.summary)")
        let config = try String(contentsOfFile: c.configPath, encoding: .utf8)
        try Data(config.replacingOccurrences(of: dead, with: s3.endpoint).utf8).write(to: URL(fileURLWithPath: c.configPath))
        let healed = try c.snapshot()
        #expect(healed.status == 0, "\(healed.stderr)")
        let view = try c.reader(root)
        #expect(try view.list(.catalog).count == 2, "the first snapshot was delivered too")
        let r = try c.restore(from: [root], c.s3Options())
        #expect(r.status == 0, "\(r.out)")
    }

    /// A client whose index is lost is told the command that rebuilds it
    /// from its bucket; pasted with the operator's credentials, it works,
    /// and the next snapshot uploads no pack again.
    @Test func aLostIndexNamesTheRebuildCommandForTheBucket() throws {
        let s3 = try S3Server.shared()
        let root = s3.root(prefix: "lost-" + UUID().uuidString.prefix(6).lowercased())
        let c = try Client(s3, mirrors: ["--mirror", root + "c1/", "--s3-endpoint", s3.endpoint, "--s3-credentials", s3.credentials("fbk-client")])
        try c.dir.write("src/a", sampleBytes(120_000, seed: 51))
        #expect(try c.snapshot().status == 0)
        let packs = try c.reader(root).list(.pack).count
        try FileManager.default.removeItem(atPath: c.dir.file("state/index.sqlite"))
        let refused = try c.snapshot()
        #expect(refused.status == 66, "\(refused.stderr)")
        let line = try #require(refused.stderr.split(separator: "\n").first { $0.contains("fbk index rebuild") })
        #expect(line.contains("--from \(root)") && line.contains("--s3-endpoint \(s3.endpoint)"), "\(line)")
        let words = line.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: "OPERATOR_S3_CREDENTIALS", with: s3.credentials("fbk-operator"))
            .split(separator: " ").map(String.init)
        let rebuild = try CLI.run(Array(words.dropFirst()))
        #expect(rebuild.status == 0, "\(words) \(rebuild.stdout) \(rebuild.stderr)")
        let again = try c.snapshot()
        #expect(again.status == 0, "\(again.stderr)")
        #expect(try c.reader(root).list(.pack).count <= packs + 1, "only the new tree pack, if any")
    }

    /// Prune on a bucket: what the policy drops moves to PREFIX/.fbk-trash
    /// (a copy, then the object's version deleted); the latest snapshot
    /// still restores; mirror-sync copies between a bucket and a directory
    /// and does not bring back what prune removed.
    @Test func pruneAndMirrorSyncOnABucket() throws {
        let s3 = try S3Server.shared()
        let root = s3.root("fbk2", prefix: "prune-" + UUID().uuidString.prefix(6).lowercased())
        let c = try Client(s3, mirrors: ["--mirror", root + "c1/", "--s3-endpoint", s3.endpoint, "--s3-credentials", s3.credentials("fbk-client")])
        try c.dir.write("src/old", sampleBytes(200_000, seed: 21))
        #expect(try c.snapshot().status == 0)
        usleep(1_100_000)   // the second snapshot received a second later: the newest by receipt time
        try FileManager.default.removeItem(atPath: c.source + "/old")
        try c.dir.write("src/new", sampleBytes(200_000, seed: 22))
        #expect(try c.snapshot().status == 0)
        let view = try c.reader(root)
        let before = try view.list(.pack).count

        // Forty days on, keep_last 1 keeps the newer snapshot only.
        let conf = try c.checkConfig("      keep_within: 20d\n      keep_last: 1")
        let prune = try CLI.run(["prune", "--config", conf, "--url", root, "--json"] + c.s3Options("fbk-prune"),
                                environment: ["FBK_TEST_NOW": String(Date().timeIntervalSince1970 + 40 * 86_400)])
        #expect(prune.status == 0, "\(prune.stdout) \(prune.stderr)")
        let plan = ((try? JSONSerialization.jsonObject(with: prune.stdoutBytes)) as? [String: Any]).flatMap { ($0["clients"] as? [[String: Any]])?.first } ?? [:]
        #expect((plan["removed_snapshots"] as? [String])?.count == 1, "\(plan)")
        #expect((plan["locked"] as? [String])?.isEmpty ?? true, "\(plan)")
        #expect(try view.list(.catalog).count == 1)
        #expect(try view.list(.pack).count < before, "the old snapshot's own packs went")
        let trash = try S3Backend(directory: root + ".fbk-trash/c1/", settings: S3Settings(endpoint: s3.endpoint, credentialsFile: s3.credentials("fbk-operator")))
        #expect(try !trash.inventory().objects.isEmpty, "removed objects wait in the trash")
        // The operator's credentials cannot delete; the prune account's can only what is unlocked (none here).
        #expect(throws: BackendError.self) { try view.delete(try view.list(.pack)[0].path) }

        let r = try c.restore(from: [root], c.s3Options())
        #expect(r.status == 0, "\(r.out)")
        let same = FileManager.default.contents(atPath: r.target + c.source + "/new").map([UInt8].init) == sampleBytes(200_000, seed: 22)
        #expect(same)

        // Bucket → directory: everything present; directory → a second bucket prefix, with Object Lock.
        let local = try TemporaryDirectory()
        let toDisk = try CLI.run(["mirror-sync", root, local.path] + c.s3Options())
        #expect(toDisk.status == 0, "\(toDisk.stdout) \(toDisk.stderr)")
        #expect(try DirectoryBackend(storageRoot: local.path, client: "c1").inventory().objects.count == (try view.inventory().objects.count))
        let other = s3.root("fbk", prefix: "synced-" + UUID().uuidString.prefix(6).lowercased())
        let toBucket = try CLI.run(["mirror-sync", local.path, other] + c.s3Options() + ["--s3-object-lock", "governance", "--s3-object-lock-days", "15"])
        #expect(toBucket.status == 0, "\(toBucket.stdout) \(toBucket.stderr)")
        let copied = try c.reader(other)
        #expect(try copied.list(.catalog).count == 1)
        let locked = try #require(try c.reader(other, user: "fbk-prune").retainedUntil(try copied.list(.pack)[0].path))
        #expect(abs(locked.timeIntervalSinceNow - 15 * 86_400) < 3_600)
        // The pruned objects are not brought back into the bucket they were pruned from.
        let back = try CLI.run(["mirror-sync", local.path, root] + c.s3Options())
        #expect(back.status == 0 && back.stdout.contains("0 objects copied"), "\(back.stdout) \(back.stderr)")
    }

    /// Prune leaves what Object Lock still protects, and says so: a locked
    /// catalog keeps its snapshot, nothing is an error.
    @Test func pruneReportsLockedObjectsAndRemovesNothingTheyNeed() throws {
        let s3 = try S3Server.shared()
        let root = s3.root(prefix: "locked-" + UUID().uuidString.prefix(6).lowercased())
        let c = try Client(s3, mirrors: ["--mirror", root + "c1/", "--s3-endpoint", s3.endpoint, "--s3-credentials", s3.credentials("fbk-client"),
                                         "--s3-object-lock", "compliance", "--s3-object-lock-days", "14"])
        try c.dir.write("src/a", sampleBytes(100_000, seed: 31))
        #expect(try c.snapshot().status == 0)
        try c.dir.write("src/a", sampleBytes(100_000, seed: 32))
        #expect(try c.snapshot().status == 0)
        // Both snapshots older than keep_within: only keep_last and the lock can keep the first.
        sleep(2)
        let conf = try c.checkConfig("      keep_within: 1s\n      keep_last: 1")
        let prune = try CLI.run(["prune", "--config", conf, "--url", root, "--force", "--json"] + c.s3Options("fbk-prune"))
        #expect(prune.status == 0, "\(prune.stdout) \(prune.stderr)")
        let plan = ((try? JSONSerialization.jsonObject(with: prune.stdoutBytes)) as? [String: Any]).flatMap { ($0["clients"] as? [[String: Any]])?.first } ?? [:]
        #expect((plan["removed_snapshots"] as? [String])?.isEmpty == true, "\(plan) \(prune.stderr)")
        #expect(((plan["locked"] as? [String]) ?? []).contains { $0.hasPrefix("snapshots/") && $0.contains(".catalog until ") }, "\(plan)")
        #expect(try c.reader(root).list(.catalog).count == 2)
        let text = try CLI.run(["prune", "--config", conf, "--url", root, "--force", "--dry-run"] + c.s3Options("fbk-prune"))
        #expect(text.stdout.contains("under Object Lock"), "\(text.stdout)")
    }
}
