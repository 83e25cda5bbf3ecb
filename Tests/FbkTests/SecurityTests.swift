// The red-team run's attacks, replayed: objects forged from FORMAT.md by an
// independent forger (Tests/Fixtures/forge.py) against a repository that
// real nginx mirrors hold, then the operator's commands run as a user
// would. Each test failed before the fix it names (issue 17, items 1-13).

import CLinux
import Foundation
import Seal
import Format
import Testing
import TestSupport

@Suite(.serialized) struct SecurityTests {
    /// A client with two genuine snapshots of a few files on both mirrors.
    static func genuine() throws -> SnapshotFixture {
        let f = try SnapshotFixture()
        try FileManager.default.createDirectory(atPath: f.source + "/etc", withIntermediateDirectories: true)
        try Data("first version\n".utf8).write(to: URL(fileURLWithPath: f.source + "/etc/config"))
        try Data(sampleBytes(600_000, seed: 7)).write(to: URL(fileURLWithPath: f.source + "/data.bin"))
        guard try f.snapshot().status == 0 else { throw FixtureError("first snapshot failed") }
        Thread.sleep(forTimeInterval: 1.1)   // snapshot IDs and receipt times are per second
        try Data("second version\n".utf8).write(to: URL(fileURLWithPath: f.source + "/etc/config"))
        guard try f.snapshot().status == 0 else { throw FixtureError("second snapshot failed") }
        return f
    }

    /// Runs the forger against mirror `mirror`'s copy of the client.
    @discardableResult
    static func forge(_ f: SnapshotFixture, _ scenario: String, _ arguments: [String] = [], mirror: Int = 0,
                      withSecret: Bool = false) throws -> [String: Any] {
        var args = [repositoryRoot + "/Tests/Fixtures/forge.py", scenario, "--dir", f.mirrors[mirror].storageRoot + "/c1",
                    "--client", "c1", "--recipient", f.keysDirectory + "/recipient.pem"]
        if withSecret { args += ["--secret", f.dir.file("etc/secret")] }
        let r = try runTool("python3", args + arguments)
        guard r.status == 0 else { throw FixtureError("forge.py \(scenario): \(r.stderr)") }
        return (try JSONSerialization.jsonObject(with: Data(r.stdout)) as? [String: Any]) ?? [:]
    }

    /// An operator command over mirror 0 (and more `--from` in `extra`), the client pinned by its signing.pub.
    static func fbk(_ f: SnapshotFixture, _ command: String, _ extra: [String] = [], pin: [String]? = nil,
                    from: [Int] = [0], environment: [String: String] = [:]) throws -> CLI.Result {
        let sources = from.flatMap { ["--from", f.mirrors[$0].storageRoot] }
        let identity = pin ?? ["--signing-key", f.dir.file("etc/signing.pub")]
        var env = ["FBK_PASSPHRASE": f.passphrase]
        for (k, v) in environment { env[k] = v }
        return try CLI.run([command] + sources + ["--client", "c1"] + identity + ["--key", f.keysDirectory + "/private.pem"] + extra,
                           environment: env)
    }

    /// The genuine snapshots, oldest first (the forger writes to mirror 0 only).
    static func snapshotIDs(_ f: SnapshotFixture) throws -> [String] {
        try f.catalogs(1).map(\.snapshot.text)
    }

    static func restoredConfig(_ f: SnapshotFixture, _ target: String) -> String? {
        try? String(contentsOfFile: target + f.source + "/etc/config", encoding: .utf8)
    }

    // MARK: 1. A compromised client cannot change how earlier snapshots restore

    @Test func aLaterListingCannotMisdirectEarlierSnapshots() throws {
        let f = try Self.genuine()
        let ids = try Self.snapshotIDs(f)
        let genuinePack = try #require(f.objects(0).sorted().first { $0.hasSuffix(".pack") })
        let forged = try Self.forge(f, "poison-listing", ["--claim", "missing"], withSecret: true)["snapshot"] as! String
        try Self.forge(f, "poison-listing", ["--claim", genuinePack], withSecret: true)
        for (id, expected) in zip(ids, ["first version\n", "second version\n"]) {
            let target = f.dir.file("restore-\(id)")
            let r = try Self.fbk(f, "restore", [id, "--target", target])
            #expect(r.status == 0, "\(r.stderr)")
            #expect(Self.restoredConfig(f, target) == expected)
            #expect(try Data(contentsOf: URL(fileURLWithPath: target + f.source + "/data.bin")) == Data(sampleBytes(600_000, seed: 7)))
        }
        // The forged snapshot itself is named for what it is.
        let verify = try Self.fbk(f, "verify", [forged])
        #expect(verify.status == 65)
        #expect(verify.stdout.contains("FORGED LISTING") && verify.stdout.contains("catalog does not list"), "\(verify.stdout)")
    }

    // MARK: 2. A hostile server's records are refused, not warned about

    @Test func anUnsignedRecordWithTheEscrowDeletedIsRefused() throws {
        let f = try Self.genuine()
        let forged = try Self.forge(f, "unsigned-record", ["--delete-escrow"])["snapshot"] as! String
        // Pinned to signing.pub, the missing escrow stops the restore and says what to give.
        let refused = try Self.fbk(f, "restore", ["latest", "--target", f.dir.file("r1")])
        #expect(refused.status == 65)
        #expect(refused.stderr.contains("--secret"), "\(refused.stderr)")
        #expect(!FileManager.default.fileExists(atPath: f.dir.file("r1/planted.txt")))
        // With the bundle's secret: latest is the genuine one; the forgery is named and refused.
        let pin = ["--secret", f.dir.file("etc/secret")]
        let r = try Self.fbk(f, "restore", ["latest", "--target", f.dir.file("r2")], pin: pin)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(Self.restoredConfig(f, f.dir.file("r2")) == "second version\n")
        #expect(!FileManager.default.fileExists(atPath: f.dir.file("r2/planted.txt")))
        #expect(r.stderr.contains("REFUSED") && r.stderr.contains(forged))
        #expect(try Self.fbk(f, "restore", [forged, "--target", f.dir.file("r3")], pin: pin).status == 65)
        #expect(try Self.fbk(f, "snapshots", pin: pin).status == 65)
        // Without any pinned identity nothing is read at all.
        let unpinned = try Self.fbk(f, "snapshots", pin: [])
        #expect(unpinned.status == 64 && unpinned.stderr.contains("--signing-key"), "\(unpinned.stderr)")
    }

    @Test func aReplacedEscrowAndItsSignedRecordsAreRefused() throws {
        let f = try Self.genuine()
        let forged = try Self.forge(f, "swap-escrow", ["--hostile-entries"])["snapshot"] as! String
        let verify = try Self.fbk(f, "verify", ["latest"])
        #expect(verify.status == 65)
        #expect(verify.stderr.contains("not the enrolled client's") && verify.stderr.contains("--secret"), "\(verify.stderr)")
        let pin = ["--secret", f.dir.file("etc/secret")]
        let snapshots = try Self.fbk(f, "snapshots", ["--json"], pin: pin)
        #expect(snapshots.status == 65)
        let rows = try JSONSerialization.jsonObject(with: snapshots.stdoutBytes) as? [[String: Any]] ?? []
        #expect(rows.compactMap { $0["id"] as? String } == (try Self.snapshotIDs(f)))
        #expect(try Self.fbk(f, "verify", [forged], pin: pin).status == 65)
        #expect(try Self.fbk(f, "verify", ["latest"], pin: pin).status == 0)
        // The loud option believes the storage; it says so.
        let unpinned = try Self.fbk(f, "snapshots", pin: ["--trust-storage-identity"])
        #expect(unpinned.stderr.contains("UNPINNED"))
        #expect(unpinned.stdout.contains(forged))
    }

    // MARK: 10. Hostile entries, restored from a client no longer trusted

    @Test func stripPrivilegesDropsDevicesSetIDBitsAndCapabilities() throws {
        let f = try Self.genuine()
        let forged = try Self.forge(f, "swap-escrow", ["--hostile-entries"])["snapshot"] as! String
        let target = f.dir.file("stripped")
        let r = try Self.fbk(f, "restore", [forged, "--target", target, "--strip-privileges"], pin: ["--trust-storage-identity"])
        #expect(r.status == 0, "\(r.stderr)")
        var st = stat()
        #expect(lstat(target + "/null2", &st) != 0, "a device node was created")
        for name in ["suid", "sgid"] {
            #expect(lstat(target + "/" + name, &st) == 0)
            #expect(st.st_mode & 0o6000 == 0, "\(name) kept a set-ID bit: \(String(st.st_mode, radix: 8))")
        }
        #expect(getxattr(target + "/capfile", "security.capability", nil, 0) < 0, "the file capability was restored")
        if geteuid() == 0 {
            // Without the option, as root, they are restored as recorded: the option is what strips them.
            let full = f.dir.file("full")
            #expect(try Self.fbk(f, "restore", [forged, "--target", full], pin: ["--trust-storage-identity"]).status == 0)
            #expect(lstat(full + "/suid", &st) == 0 && st.st_mode & 0o4000 != 0)
            #expect(lstat(full + "/null2", &st) == 0 && st.st_mode & S_IFMT == S_IFCHR)
        }
    }

    // MARK: 3. Private temporary directories, removed when stopped

    @Test func fetchedObjectsAndWorkFilesStayInPrivateDirectoriesAndGoAway() throws {
        let f = try Self.genuine()
        try Data(sampleBytes(24 << 20, seed: 3)).write(to: URL(fileURLWithPath: f.source + "/big.bin"))
        #expect(try f.snapshot().status == 0)
        let tmp = try TemporaryDirectory()
        // Over WebDAV with the operator account: nothing is left behind.
        let pw = try tmp.write("operator-pw", Array("operator-pw\n".utf8))
        let web = try CLI.run(["restore", "--from", f.mirrors[0].operatorURL, "--user", "operator", "--password-file", pw,
                               "--client", "c1", "--signing-key", f.dir.file("etc/signing.pub"), "--key", f.keysDirectory + "/private.pem",
                               "latest", "--target", f.dir.file("web")],
                              environment: ["FBK_PASSPHRASE": f.passphrase, "TMPDIR": tmp.path])
        #expect(web.status == 0, "\(web.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: tmp.path) == ["operator-pw"])
        // Stopped by SIGTERM while verifying: its decrypted packs and plan are removed.
        let scratch = try TemporaryDirectory()
        var env = ProcessInfo.processInfo.environment
        env["FBK_PASSPHRASE"] = f.passphrase
        env["TMPDIR"] = tmp.path
        let pid = try spawnDetached(CLI.binary.path, ["verify", "--from", f.mirrors[0].storageRoot, "--client", "c1",
                                                      "--signing-key", f.dir.file("etc/signing.pub"),
                                                      "--key", f.keysDirectory + "/private.pem", "latest"],
                                    environment: env, stdout: scratch.file("out"), stderr: scratch.file("err"))
        var sawWork = false
        for _ in 0..<400 where !sawWork {
            sawWork = ((try? FileManager.default.contentsOfDirectory(atPath: tmp.path)) ?? []).contains { $0.hasPrefix("fbk-restore-") }
            if !sawWork { usleep(10_000) }
        }
        kill(pid, SIGTERM)
        let status = waitForExit(pid)
        #expect(sawWork)
        #expect(status == 128 + SIGTERM || status == 0, "exit \(status)")
        let left = try FileManager.default.contentsOfDirectory(atPath: tmp.path)
        #expect(left == ["operator-pw"], "left in TMPDIR: \(left)")
    }

    // MARK: 4. Every object read is size-checked first

    @Test func hugeObjectsAreRefusedUnreadInBoundedMemory() throws {
        let f = try Self.genuine()
        let dir = f.mirrors[0].storageRoot + "/c1/snapshots/"
        let id = "20261206T030000Z-00000000000000aa"
        for (name, size) in [(id + ".catalog", Int64(1) << 30), (id + ".snapshot", Int64(3) << 30)] {
            let fd = open(dir + name, O_WRONLY | O_CREAT, 0o644)
            #expect(fd >= 0 && ftruncate(fd, off_t(size)) == 0)
            close(fd)
        }
        let config = try Self.checkConfig(f)
        let rss = try TemporaryDirectory()
        let check = try runTool("/usr/bin/time", ["-f", "%M", "-o", rss.file("check"), CLI.binary.path, "check",
                                                  "--config", config, "--root", f.mirrors[0].storageRoot])
        #expect(check.status == 2)
        #expect(String(decoding: check.stdout, as: UTF8.self).contains("more than the"), "\(String(decoding: check.stdout, as: UTF8.self))")
        let list = try runTool("/usr/bin/time", ["-f", "%M", "-o", rss.file("snapshots"), CLI.binary.path, "snapshots",
                                                 "--from", f.mirrors[0].storageRoot, "--client", "c1",
                                                 "--signing-key", f.dir.file("etc/signing.pub"), "--key", f.keysDirectory + "/private.pem"],
                               environment: ["FBK_PASSPHRASE": f.passphrase])
        #expect(list.status == 65)
        #expect(list.stderr.contains("REFUSED"))
        // Over WebDAV, a body longer than any such object is cut off: the sparse gigabytes never land in TMPDIR.
        let tmp = try TemporaryDirectory()
        let pw = try tmp.write("operator-pw", Array("operator-pw\n".utf8))
        let web = try runTool("/usr/bin/time", ["-f", "%M", "-o", rss.file("webdav"), CLI.binary.path, "snapshots",
                                                "--from", f.mirrors[0].operatorURL, "--user", "operator", "--password-file", pw,
                                                "--client", "c1", "--signing-key", f.dir.file("etc/signing.pub"),
                                                "--key", f.keysDirectory + "/private.pem"],
                              environment: ["FBK_PASSPHRASE": f.passphrase, "TMPDIR": tmp.path])
        #expect(web.status == 65, "\(web.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: tmp.path) == ["operator-pw"])
        for name in ["check", "snapshots", "webdav"] {
            // GNU time puts "Command exited with non-zero status N" before the figure.
            let lines = String(decoding: rss.read(name) ?? [], as: UTF8.self).split(separator: "\n")
            let kib = lines.last.flatMap { Int($0.trimmingCharacters(in: .whitespaces)) } ?? .max
            #expect(kib < 64 << 10, "\(name): peak RSS \(kib) KiB")
        }
    }

    static func checkConfig(_ f: SnapshotFixture) throws -> String {
        let key = try String(contentsOfFile: f.dir.file("etc/signing.pub"), encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        return try f.dir.write("check.conf", Array("clients:\n  - name: c1\n    kind: fbk\n    signing_key: \(key)\n".utf8))
    }

    // MARK: 5. A tree bomb stops at the counts the signed record states

    @Test func aTreeBombStopsWithAnIntegrityError() throws {
        let f = try Self.genuine()
        let bomb = try Self.forge(f, "tree-bomb", ["--depth", "40"], withSecret: true)["snapshot"] as! String
        let verify = try Self.fbk(f, "verify", [bomb])
        #expect(verify.status == 65)
        #expect(verify.stderr.contains("more entries than its signed record"), "\(verify.stderr)")
        let ls = try Self.fbk(f, "ls", [bomb, "-R"])
        #expect(ls.status == 65)
        let restore = try Self.fbk(f, "restore", [bomb, "--target", f.dir.file("bomb")])
        #expect(restore.status == 65)
        // A bomb whose record claims more entries is walked further before it
        // is refused (directories are created as the walk plans them), and the
        // restore removes them: the target is left as it was found, empty.
        let deeper = try Self.forge(f, "tree-bomb", ["--depth", "40", "--claim-files", "2000"], withSecret: true)["snapshot"] as! String
        let refused = try Self.fbk(f, "restore", [deeper, "--target", f.dir.file("bomb2")])
        #expect(refused.status == 65 && refused.stderr.contains("more entries than its signed record"), "\(refused.stderr)")
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: f.dir.file("bomb2"))) ?? ["missing"]).isEmpty)
        // Genuine snapshots are untouched by it.
        #expect(try Self.fbk(f, "verify", [try Self.snapshotIDs(f)[0]]).status == 0)
    }

    /// A compromised client signs whatever counts it likes: verifying its
    /// bomb still checks each distinct tree and chunk once, and ends.
    @Test func aTreeBombClaimingHugeCountsVerifiesEachDistinctTreeOnce() throws {
        let f = try Self.genuine()
        let bomb = try Self.forge(f, "tree-bomb", ["--depth", "40", "--claim-files", String(1 << 45)], withSecret: true)["snapshot"] as! String
        let args = ["120", CLI.binary.path, "verify", "--from", f.mirrors[0].storageRoot, "--client", "c1", "--signing-key",
                    f.dir.file("etc/signing.pub"), "--key", f.keysDirectory + "/private.pem", bomb, "--json"]
        let verify = try runTool("timeout", args, environment: ["FBK_PASSPHRASE": f.passphrase])
        #expect(verify.status == 0, "\(verify.stderr)")   // 124 would be the timeout: it ran on
        let summary = try JSONSerialization.jsonObject(with: Data(verify.stdout)) as? [String: Any] ?? [:]
        #expect(summary["chunks_verified"] as? Int == 1)
    }

    // MARK: 6. `latest` follows the server's receipt time

    @Test func aFutureDatedRecordIsNeitherLatestNorRestorable() throws {
        let f = try Self.genuine()
        let future = try Self.forge(f, "future-record", ["--year", "2999"], withSecret: true)["snapshot"] as! String
        let list = try Self.fbk(f, "snapshots", ["--json"])
        let rows = try JSONSerialization.jsonObject(with: list.stdoutBytes) as? [[String: Any]] ?? []
        #expect(rows.last?["id"] as? String == (try Self.snapshotIDs(f)).last)
        #expect(!list.stdout.contains(future) && list.stderr.contains("future-dated"))
        #expect(try Self.fbk(f, "restore", [future, "--target", f.dir.file("future")]).status == 65)
        let check = try CLI.run(["check", "--config", try Self.checkConfig(f), "--root", f.mirrors[0].storageRoot])
        #expect(check.stdout.contains("claims to be created 2999"), "\(check.stdout)")
    }

    // MARK: 8. The weekly check hashes what it has not seen, and a rolling share

    @Test func theCheckWithStateCatchesTamperingWithoutDeep() throws {
        let f = try Self.genuine()
        let config = try Self.checkConfig(f)
        let state = f.dir.file("check-state")
        let root = f.mirrors[0].storageRoot
        let first = try CLI.run(["check", "--config", config, "--root", root, "--state", state])
        #expect(first.status == 0, "\(first.stdout)")
        // A same-size bit flip in a pack, and garbage planted under a pack name.
        let pack = try #require(f.objects(0).sorted().first { $0.hasSuffix(".pack") })
        let path = f.path(0, pack)
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        bytes[bytes.count / 2] ^= 1
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let squat = "packs/ab/ab" + String(repeating: "0", count: 62) + ".pack"
        try FileManager.default.createDirectory(atPath: root + "/c1/packs/ab", withIntermediateDirectories: true)
        try Data(sampleBytes(4096, seed: 9)).write(to: URL(fileURLWithPath: root + "/c1/" + squat))
        let second = try CLI.run(["check", "--config", config, "--root", root, "--state", state])
        #expect(second.status == 2)
        #expect(second.stdout.contains(pack) && second.stdout.contains(squat), "\(second.stdout)")
        // Without the state the default check could not see either (the size is right).
        // A deleted escrow is flagged too.
        try FileManager.default.removeItem(atPath: root + "/c1/" + ObjectName.escrow.path)
        let third = try CLI.run(["check", "--config", config, "--root", root, "--state", state])
        #expect(third.stdout.contains("client-secret.cms is missing"), "\(third.stdout)")
        // Old packs no catalog needs are named.
        setModificationTime(root + "/c1/" + squat, daysAgo: 10)
        let fourth = try CLI.run(["check", "--config", config, "--root", root])
        #expect(fourth.stdout.contains("needed by no signed catalog"), "\(fourth.stdout)")
    }

    @Test func theRollingShareRehashesOldObjectsOverTime() throws {
        let f = try Self.genuine()
        let config = try Self.checkConfig(f)
        let state = f.dir.file("check-state")
        let root = f.mirrors[0].storageRoot
        #expect(try CLI.run(["check", "--config", config, "--root", root, "--state", state, "--reverify-share", "0.5"]).status == 0)
        // Bit rot that keeps size and time: only the rolling re-hash can find it.
        let pack = try #require(f.objects(0).sorted().first { $0.hasSuffix(".pack") })
        let path = f.path(0, pack)
        var st = stat()
        lstat(path, &st)
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        bytes[100] ^= 0x80
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        var times = [st.st_atim, st.st_mtim]
        utimensat(AT_FDCWD, path, &times, 0)
        var found = false
        for _ in 0..<3 where !found {
            let r = try CLI.run(["check", "--config", config, "--root", root, "--state", state, "--reverify-share", "0.5"])
            found = r.status == 2 && r.stdout.contains(pack)
        }
        #expect(found, "three runs re-hashing half the bytes each did not find the flipped bit")
    }

    // MARK: 9. A pack copy that lacks a chunk, or holds it wrong: the next source

    @Test(arguments: ["lacks", "wrong"])
    func aDamagedCopyOnOneSourceFallsBackToTheOther(mode: String) throws {
        let f = try Self.genuine()
        for pack in f.objects(0).filter({ $0.hasSuffix(".pack") }) {
            let out = f.dir.file("variant-\(mode)")
            try Self.forge(f, "pack-variant", ["--pack", pack, "--mode", mode, "--out", out], withSecret: true)
            try FileManager.default.removeItem(atPath: f.path(0, pack))
            try FileManager.default.moveItem(atPath: out, toPath: f.path(0, pack))
        }
        let target = f.dir.file("both")
        let r = try Self.fbk(f, "restore", ["latest", "--target", target], from: [0, 1])
        #expect(r.status == 0, "\(r.stdout) \(r.stderr)")
        #expect(Self.restoredConfig(f, target) == "second version\n")
        #expect(try Data(contentsOf: URL(fileURLWithPath: target + f.source + "/data.bin")) == Data(sampleBytes(600_000, seed: 7)))
        #expect(try Self.fbk(f, "verify", ["latest"], from: [0, 1]).status == 0)
        // From the damaged source alone, the damage is named and the exit status says so.
        #expect(try Self.fbk(f, "verify", ["latest"], from: [0]).status == 65)
    }

    // MARK: 11. Names are escaped on a terminal, exact in JSON

    @Test func controlCharactersInNamesAreEscapedInHumanOutput() throws {
        let f = try SnapshotFixture()
        let name = "evil\u{1B}]0;pwned\u{07}\u{1B}[2Jname"
        try Data("x".utf8).write(to: URL(fileURLWithPath: f.source + "/" + name))
        #expect(try f.snapshot().status == 0)
        let ls = try Self.fbk(f, "ls", ["latest", "-R"])
        #expect(ls.status == 0)
        #expect(!ls.stdoutBytes.contains(0x1B) && !ls.stdoutBytes.contains(0x07))
        #expect(ls.stdout.contains("evil\\033]0;pwned\\007\\033[2Jname"), "\(ls.stdout)")
        let json = try Self.fbk(f, "ls", ["latest", "-R", "--json"])
        let rows = try JSONSerialization.jsonObject(with: json.stdoutBytes) as? [[String: Any]] ?? []
        #expect(rows.contains { ($0["path"] as? String)?.hasSuffix("/" + name) == true })
    }

    // MARK: 12. Passphrases

    @Test func keygenRefusesAShortPassphraseUnlessTold() throws {
        let dir = try TemporaryDirectory()
        let short = try CLI.run(["keygen", "--out", dir.file("k1"), "--type", "p384"], environment: ["FBK_PASSPHRASE": "a"])
        #expect(short.status == 64 && short.stderr.contains("at least 12"))
        #expect(!FileManager.default.fileExists(atPath: dir.file("k1/private.pem")))
        #expect(try CLI.run(["keygen", "--out", dir.file("k2"), "--type", "p384", "--allow-short-passphrase"],
                            environment: ["FBK_PASSPHRASE": "a"]).status == 0)
    }

    // MARK: 7. Names nobody can take first

    @Test func enrollmentSealsTheEscrowAndDeviceBlobNamesAreUnpredictable() throws {
        let dir = try TemporaryDirectory()
        #expect(try CLI.run(["keygen", "--out", dir.file("keys"), "--type", "p384"], environment: ["FBK_PASSPHRASE": "long enough passphrase"]).status == 0)
        let r = try CLI.run(["enroll", "pi", "--mirror", "http://127.0.0.1:1/pi/", "--recipient", dir.file("keys/recipient.pem"),
                             "--out", dir.file("bundles")])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("/srv/fbk/pi/keys/client-secret.cms"))
        let opened = try CLI.run(["decrypt", "--key", dir.file("keys/private.pem"), dir.file("bundles/pi/client-secret.cms")],
                                 environment: ["FBK_PASSPHRASE": "long enough passphrase"])
        let secret = try String(contentsOfFile: dir.file("bundles/pi/secret"), encoding: .utf8)
        #expect(opened.status == 0 && opened.stdout == secret)
        let stamp = try runTool("busybox", ["sh", "-c", ". \(repositoryRoot)/contrib/fbk-device-lib.sh; fbk_stamp conf; fbk_stamp conf"])
        let names = String(decoding: stamp.stdout, as: UTF8.self).split(separator: "\n").map(String.init)
        #expect(names.count == 2 && names[0] != names[1])
        let pattern = try NSRegularExpression(pattern: "^conf-[0-9]{8}T[0-9]{6}Z-[0-9a-f]{16}$")
        for n in names { #expect(pattern.firstMatch(in: n, range: NSRange(n.startIndex..., in: n)) != nil, "\(n)") }
    }

    // MARK: A second red-team pass, against the fixes above

    @Test func aBackdatedCatalogOnOneMirrorRefusesNothing() throws {
        let f = try Self.genuine()
        for c in f.objects(0) where c.hasSuffix(".catalog") { setModificationTime(f.path(0, c), daysAgo: 2000) }
        // With the honest mirror too, its receipt times show the records are not from the future.
        let both = try Self.fbk(f, "restore", ["latest", "--target", f.dir.file("both")], from: [0, 1])
        #expect(both.status == 0, "\(both.stderr)")
        #expect(Self.restoredConfig(f, f.dir.file("both")) == "second version\n")
        // From the backdating mirror alone they look future-dated: refused, and the message names the way out.
        let alone = try Self.fbk(f, "restore", ["latest", "--target", f.dir.file("alone")], from: [0])
        #expect(alone.status != 0 && alone.stderr.contains("--accept-future-dated"), "\(alone.stderr)")
        let accepted = try Self.fbk(f, "restore", ["latest", "--target", f.dir.file("accepted"), "--accept-future-dated"], from: [0])
        #expect(accepted.status == 0, "\(accepted.stderr)")
        #expect(Self.restoredConfig(f, f.dir.file("accepted")) == "second version\n")
    }

    @Test func aForgedListingThatIsTheFirstWordOnEveryPackIsOnlyAHint() throws {
        let f = try Self.genuine()
        let forged = try Self.forge(f, "claim-packs", ["--time", "1971-01-01T00:10:00"], withSecret: true)
        // A hostile server sets the forgery's file times back, so a reader meets its listing first.
        for o in forged["wrote"] as? [String] ?? [] { setModificationTime(f.path(0, o), daysAgo: 20_000) }
        for (id, expected) in zip(try Self.snapshotIDs(f), ["first version\n", "second version\n"]) {
            let target = f.dir.file("r-\(id)")
            let r = try Self.fbk(f, "restore", [id, "--target", target])
            #expect(r.status == 0, "\(r.stdout) \(r.stderr)")
            #expect(Self.restoredConfig(f, target) == expected)
            #expect(try Data(contentsOf: URL(fileURLWithPath: target + f.source + "/data.bin")) == Data(sampleBytes(600_000, seed: 7)))
        }
    }

    @Test func plantedFIFOsAndLinksHangNothingAndAreNamed() throws {
        let f = try Self.genuine()
        let dir = f.mirrors[0].storageRoot + "/c1/"
        #expect(mkfifo(dir + "snapshots/20261206T030000Z-0000000000000000.catalog", 0o644) == 0)
        #expect(mkfifo(dir + "keys/planted.cms", 0o644) == 0)
        #expect(symlink("/etc", dir + "packs/ee") == 0)
        let args = ["60", CLI.binary.path, "snapshots", "--from", f.mirrors[0].storageRoot, "--client", "c1",
                    "--signing-key", f.dir.file("etc/signing.pub"), "--key", f.keysDirectory + "/private.pem"]
        let list = try runTool("timeout", args, environment: ["FBK_PASSPHRASE": f.passphrase])
        #expect(list.status == 65, "\(list.stderr)")   // not 124: it did not hang
        let check = try runTool("timeout", ["60", CLI.binary.path, "check", "--config", try Self.checkConfig(f), "--root", f.mirrors[0].storageRoot])
        let text = String(decoding: check.stdout, as: UTF8.self)
        #expect(check.status == 1 || check.status == 2, "\(text)")
        #expect(text.contains("planted.cms is not a regular file") && text.contains("packs/ee is not a regular file"), "\(text)")
    }

    @Test func aClosedPipeLeavesNoDecryptedPacks() throws {
        let f = try SnapshotFixture()
        for d in 0..<30 {
            try FileManager.default.createDirectory(atPath: f.source + "/d\(d)", withIntermediateDirectories: true)
            for n in 0..<100 { try Data("\(d)-\(n)".utf8).write(to: URL(fileURLWithPath: f.source + "/d\(d)/file-with-a-longish-name-\(n)")) }
        }
        #expect(try f.snapshot().status == 0)
        let tmp = try TemporaryDirectory()
        let command = "'\(CLI.binary.path)' ls -R --from '\(f.mirrors[0].storageRoot)' --client c1 --signing-key '\(f.dir.file("etc/signing.pub"))' --key '\(f.keysDirectory)/private.pem' latest | head -1"
        let r = try runTool("sh", ["-c", command], environment: ["FBK_PASSPHRASE": f.passphrase, "TMPDIR": tmp.path])
        #expect(r.status == 0)
        let left = try FileManager.default.contentsOfDirectory(atPath: tmp.path)
        #expect(left.isEmpty, "left in TMPDIR: \(left)")
    }

    @Test func theChecksReportEscapesPlantedNames() throws {
        let f = try Self.genuine()
        try Data("x".utf8).write(to: URL(fileURLWithPath: f.mirrors[0].storageRoot + "/c1/snapshots/x\u{1B}]0;PWNED\u{07}y.snapshot"))
        let check = try CLI.run(["check", "--config", try Self.checkConfig(f), "--root", f.mirrors[0].storageRoot])
        #expect(!check.stdoutBytes.contains(0x1B) && check.stdout.contains("x\\033]0;PWNED\\007y"), "\(check.stdout)")
    }
}
