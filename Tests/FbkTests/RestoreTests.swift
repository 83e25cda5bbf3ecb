import CLinux
import Foundation
import Seal
import Format
import Testing
import TestSupport

@Suite(.hangGuard) struct RestoreTests {
    let fixtures = repositoryRoot + "/Tests/Fixtures"

    func manifest(_ root: String, _ flags: [String] = []) throws -> String {
        let r = try runTool("python3", [fixtures + "/manifest.py", root] + flags)
        guard r.status == 0 else { throw FixtureError("manifest.py: \(r.stderr)") }
        return String(decoding: r.stdout, as: UTF8.self)
    }

    func restore(_ f: SnapshotFixture, _ args: [String], from: [Int] = [0]) throws -> CLI.Result {
        var a = ["restore", "--client", "c1", "--signing-key", f.dir.file("etc/signing.pub"), "--key", f.keysDirectory + "/private.pem"]
        for i in from { a += ["--from", f.mirrors[i].storageRoot] }
        return try CLI.run(a + args, environment: ["FBK_PASSPHRASE": f.passphrase])
    }

    /// `SNAPSHOT:/DIR` puts a directory's contents straight into the target
    /// (as restic's SNAPSHOT:/DIR): /srv/www into /srv/www.restored, not
    /// /srv/www.restored/srv/www; hardlinks inside it stay links, paths are
    /// relative to it, and a directory the snapshot lacks is an error.
    @Test func aSubtreeRestoresAsTheTarget() throws {
        let f = try SnapshotFixture()
        try f.dir.write("src/www/index.html", Array("<h1>hackerspace</h1>\n".utf8))
        try f.dir.write("src/www/img/logo.png", sampleBytes(20_000, seed: 7))
        try f.dir.write("src/other", Array("not wanted\n".utf8))
        #expect(link(f.source + "/www/index.html", f.source + "/www/img/index-link.html") == 0)
        #expect(try f.snapshot().status == 0)
        let target = f.dir.file("www.restored")
        let r = try restore(f, ["latest:" + f.source + "/www", "--target", target])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: target).sorted() == ["img", "index.html"])
        let logo = FileManager.default.contents(atPath: target + "/img/logo.png").map([UInt8].init) == sampleBytes(20_000, seed: 7)
        #expect(logo)
        var a = stat(), b = stat()
        #expect(lstat(target + "/index.html", &a) == 0 && lstat(target + "/img/index-link.html", &b) == 0 && a.st_ino == b.st_ino,
                "a hardlink within the subtree stays a link")

        let one = f.dir.file("one")
        #expect(try restore(f, ["latest:" + f.source + "/www", "--target", one, "img"]).status == 0)
        #expect(try FileManager.default.contentsOfDirectory(atPath: one) == ["img"])
        let missing = try restore(f, ["latest:" + f.source + "/nowhere", "--target", f.dir.file("none")])
        #expect(missing.status == 64 && missing.stderr.contains("nowhere"), "\(missing.stderr)")
        let file = try restore(f, ["latest:" + f.source + "/other", "--target", f.dir.file("none2")])
        #expect(file.status == 64 && file.stderr.contains("not a directory"), "\(file.stderr)")
    }

    /// `--overwrite` puts a snapshot back over a tree that is there: what
    /// matches is left (the same inode), what differs is replaced, what is
    /// missing is added, extra files stay unless `--delete`; a link planted
    /// where the snapshot has a directory is replaced, never followed.
    @Test func restoreOverAnExistingTree() throws {
        let f = try SnapshotFixture()
        try f.dir.write("src/etc/same.conf", Array("same\n".utf8))
        try f.dir.write("src/etc/changed.conf", Array("as backed up\n".utf8))
        try f.dir.write("src/etc/gone.conf", Array("deleted since\n".utf8))
        try f.dir.write("src/etc/ssl/key.pem", Array("key\n".utf8))
        try f.dir.write("src/etc/wasfile", Array("a file in the snapshot\n".utf8))
        #expect(try f.snapshot().status == 0)
        let etc = f.source + "/etc"
        // The machine since: one file edited, one deleted, one added, a link where ssl/ was, a directory where a file was.
        try f.dir.write("src/etc/changed.conf", Array("edited by hand\n".utf8))
        try FileManager.default.removeItem(atPath: etc + "/gone.conf")
        try f.dir.write("src/etc/extra.conf", Array("added since\n".utf8))
        try FileManager.default.removeItem(atPath: etc + "/ssl")
        let outside = try f.dir.write("outside/key.pem", Array("not to be touched\n".utf8))
        #expect(symlink((outside as NSString).deletingLastPathComponent, etc + "/ssl") == 0)
        try FileManager.default.removeItem(atPath: etc + "/wasfile")
        try f.dir.write("src/etc/wasfile/inside", Array("x\n".utf8))
        var before = stat()
        #expect(lstat(etc + "/same.conf", &before) == 0)

        let r = try restore(f, ["latest:" + etc, "--target", etc, "--overwrite", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let summary = (try? JSONSerialization.jsonObject(with: r.stdoutBytes)) as? [String: Any] ?? [:]
        let counts = summary["overwrite"] as? [String: Int] ?? [:]
        #expect(counts["kept"] == 1 && counts["removed"] == 0, "\(summary)")
        var after = stat()
        #expect(lstat(etc + "/same.conf", &after) == 0 && after.st_ino == before.st_ino, "a matching file is left as it was")
        #expect(try String(contentsOfFile: etc + "/changed.conf", encoding: .utf8) == "as backed up\n")
        #expect(try String(contentsOfFile: etc + "/gone.conf", encoding: .utf8) == "deleted since\n")
        #expect(FileManager.default.fileExists(atPath: etc + "/extra.conf"), "kept without --delete")
        #expect(try String(contentsOfFile: etc + "/wasfile", encoding: .utf8) == "a file in the snapshot\n")
        var ssl = stat()
        #expect(lstat(etc + "/ssl", &ssl) == 0 && ssl.st_mode & S_IFMT == S_IFDIR, "the planted link is replaced by the directory")
        #expect(try String(contentsOfFile: etc + "/ssl/key.pem", encoding: .utf8) == "key\n")
        #expect(try String(contentsOfFile: outside, encoding: .utf8) == "not to be touched\n", "nothing is written through the link")
        #expect(!(try FileManager.default.contentsOfDirectory(atPath: etc)).contains { $0.hasPrefix(".fbk-restore") }, "no staging left")

        let deleting = try restore(f, ["latest:" + etc, "--target", etc, "--overwrite", "--delete"])
        #expect(deleting.status == 0, "\(deleting.stderr)")
        #expect(!FileManager.default.fileExists(atPath: etc + "/extra.conf"), "removed with --delete")
        #expect(try restore(f, ["latest", "--target", etc, "--delete"]).status == 64, "--delete needs --overwrite")
        #expect(try restore(f, ["latest", "--target", etc]).status == 64, "a non-empty target needs --overwrite")
    }

    /// Fresh random bytes (each call different, so nothing deduplicates).
    func random(_ n: Int) -> [UInt8] { sampleBytes(n, seed: UInt64.random(in: 1...UInt64.max)) }

    /// Every kind of entry fbk stores, with odd names and sizes.
    func writeRichTree(_ f: SnapshotFixture) throws {
        let src = f.source
        try f.dir.write("src/empty", [])
        try f.dir.write("src/one", [7])
        try f.dir.write("src/text.conf", Array(String(repeating: "setting = on\n", count: 30_000).utf8))
        try f.dir.write("src/big.bin", random(9 << 20))  // more than the largest chunk
        try f.dir.write("src/with space and\nnewline", Array("odd".utf8))
        try f.dir.write("src/" + String(repeating: "L", count: 255), Array("long name".utf8))
        let odd = Array(src.utf8) + Array("/\u{00}".utf8).dropLast() + [UInt8(ascii: "/"), 0xfa, 0xfb]
        let fd = open(odd.map { CChar(bitPattern: $0) } + [0], O_WRONLY | O_CREAT, 0o600)
        _ = write(fd, "non-utf8", 8)
        close(fd)
        try f.dir.write("src/dir/inner/file", Array("inner".utf8))
        try FileManager.default.createDirectory(atPath: src + "/dir/empty-dir", withIntermediateDirectories: true)
        link(src + "/one", src + "/dir/hardlink-to-one")
        symlink("../text.conf", src + "/dir/symlink")
        symlink("/nonexistent/absolute", src + "/dir/dangling")
        mkfifo(src + "/dir/fifo", 0o640)
        let sfd = open(src + "/sparse", O_WRONLY | O_CREAT, 0o644)
        _ = pwrite(sfd, [UInt8](repeating: 1, count: 4096), 4096, 3 << 20)
        _ = ftruncate(sfd, 12 << 20)
        close(sfd)
        chmod(src + "/text.conf", 0o640)
        chmod(src + "/dir/inner", 0o750)
        _ = "user.fbk-test".withCString { n in "value".withCString { v in setxattr(src + "/one", n, v, 5, 0) } }
        if geteuid() == 0 {
            chown(src + "/text.conf", 1234, 5678)
            // Owners with names (root, nobody/nogroup) beside one without:
            // names looked up once each must still map each file to its own.
            chown(src + "/dir/inner/file", 65534, 65534)
            // A character device like /dev/null (1, 3); restoring it needs root too.
            mknod(src + "/dir/null-device", S_IFCHR | 0o640, CLinux_makedev(1, 3))
        }
        // Fixed times, so directory times are checked too.
        for p in ["/dir/inner", "/dir", ""] {
            var t = [timespec(tv_sec: 1_600_000_000, tv_nsec: 123_456_789), timespec(tv_sec: 1_600_000_000, tv_nsec: 123_456_789)]
            utimensat(AT_FDCWD, src + p, &t, 0)
        }
    }

    @Test func roundTripRestoresEverythingAndMatchesAnIndependentReader() throws {
        let f = try SnapshotFixture()
        try writeRichTree(f)
        let snap = try f.snapshot()
        #expect(snap.status == 0, "\(snap.stderr)")
        let target = f.dir.file("restored")
        let r = try restore(f, ["latest", "--target", target])
        #expect(r.status == 0, "\(r.stdout)\n\(r.stderr)")
        let restoredSource = target + f.source
        let expected = try manifest(f.source), got = try manifest(restoredSource)
        #expect(got == expected)
        // Sparse: the hole is not written.
        var st = stat()
        stat(restoredSource + "/sparse", &st)
        #expect(st.st_size == 12 << 20 && Int(st.st_blocks) * 512 < 1 << 20)

        // The reader written from FORMAT.md alone restores the same content.
        // Debian's Python, whose AES-GCM package scripts/install-deps.sh installs.
        let other = f.dir.file("independent")
        let ind = try runTool("/usr/bin/python3", [fixtures + "/independent_reader.py", f.mirrors[0].storageRoot, "c1",
                                          f.keysDirectory + "/private.pem", f.passphrase, other])
        #expect(ind.status == 0, "\(ind.stderr)")
        #expect(try manifest(other + f.source, ["--content-only"]) == manifest(restoredSource, ["--content-only"]))

        let verify = try CLI.run(["verify", "--from", f.mirrors[0].storageRoot, "--client", "c1",
                                  "--signing-key", f.dir.file("etc/signing.pub"), "--key", f.keysDirectory + "/private.pem", "latest"],
                                 environment: ["FBK_PASSPHRASE": f.passphrase])
        #expect(verify.status == 0, "\(verify.stdout) \(verify.stderr)")
    }

    /// File metadata is set on two threads in batches (MetadataPass): with
    /// enough files for many batches, every file still gets its own mode,
    /// times, extended attribute and (as root) owner.
    @Test func everyFileOfManyBatchesGetsItsOwnMetadata() throws {
        let f = try SnapshotFixture()
        let modes: [mode_t] = [0o644, 0o600, 0o755, 0o640, 0o444, 0o700]
        for i in 0..<1500 {
            let path = try f.dir.write("src/d\(i % 7)/f\(i)", Array("file \(i)".utf8))
            chmod(path, modes[i % modes.count])
            if i % 5 == 0 {
                _ = "user.fbk-n".withCString { n in "\(i)".withCString { v in setxattr(path, n, v, strlen(v), 0) } }
            }
            if geteuid() == 0 && i % 3 == 0 { chown(path, UInt32(2000 + i % 4), UInt32(3000 + i % 5)) }
            var t = [timespec(tv_sec: 1_500_000_000 + i * 61, tv_nsec: i * 1000), timespec(tv_sec: 1_500_000_000 + i * 61, tv_nsec: i * 1000)]
            utimensat(AT_FDCWD, path, &t, 0)
        }
        #expect(try f.snapshot().status == 0)
        let target = f.dir.file("restored")
        let r = try restore(f, ["latest", "--target", target])
        #expect(r.status == 0, "\(r.stdout)\n\(r.stderr)")
        #expect(try manifest(target + f.source) == manifest(f.source))
    }

    @Test func partialRestoresAndOlderSnapshots() throws {
        let f = try SnapshotFixture()
        try f.dir.write("src/a/file1", Array("version 1".utf8))
        try f.dir.write("src/b/file2", random(2 << 20))
        #expect(try f.snapshot().status == 0)
        let first = try f.records(0)[0].id.text
        try f.dir.write("src/a/file1", Array("version 2".utf8))
        #expect(try f.snapshot().status == 0)

        let rel = String(f.source.dropFirst())
        let one = f.dir.file("one")
        let partial = try restore(f, ["latest", "--target", one, "--json", rel + "/a/file1"])
        #expect(partial.status == 0)
        // Only the packs holding the file and its trees are opened, not the 2 MiB file's.
        let opened = (try JSONSerialization.jsonObject(with: partial.stdoutBytes) as? [String: Any])?["packs_decrypted"] as? Int
        #expect(opened != nil && opened! < f.objects(0).filter { $0.hasSuffix(".pack") }.count)
        #expect(try String(contentsOfFile: one + f.source + "/a/file1", encoding: .utf8) == "version 2")
        #expect(!FileManager.default.fileExists(atPath: one + f.source + "/b"))

        let sub = f.dir.file("sub")
        #expect(try restore(f, ["latest", "--target", sub, rel + "/b"]).status == 0)
        // A path the snapshot does not hold is an error naming it, with the stored path it likely means.
        let missing = try restore(f, ["latest", "--target", f.dir.file("nothing"), "b"])
        #expect(missing.status == 64, "\(missing.stderr)")
        #expect(missing.stderr.contains("no b in snapshot") && missing.stderr.contains("did you mean " + rel + "/b?"), "\(missing.stderr)")
        #expect(!FileManager.default.fileExists(atPath: f.dir.file("nothing")))
        #expect(FileManager.default.contents(atPath: sub + f.source + "/b/file2") == FileManager.default.contents(atPath: f.source + "/b/file2"))

        let old = f.dir.file("old")
        #expect(try restore(f, [String(first.prefix(24)), "--target", old]).status == 0)
        #expect(try String(contentsOfFile: old + f.source + "/a/file1", encoding: .utf8) == "version 1")

        let ls = try CLI.run(["ls", "--from", f.mirrors[0].storageRoot, "--client", "c1", "--signing-key", f.dir.file("etc/signing.pub"), "--key",
                              f.keysDirectory + "/private.pem", "latest", rel, "-R"], environment: ["FBK_PASSPHRASE": f.passphrase])
        #expect(ls.status == 0)
        #expect(ls.stdout.contains(rel + "/a/file1") && ls.stdout.contains(rel + "/b/file2"))
        let list = try CLI.run(["snapshots", "--from", f.mirrors[0].storageRoot, "--client", "c1", "--signing-key", f.dir.file("etc/signing.pub"), "--key",
                                f.keysDirectory + "/private.pem", "--json"], environment: ["FBK_PASSPHRASE": f.passphrase])
        let rows = try JSONSerialization.jsonObject(with: list.stdoutBytes) as? [[String: Any]] ?? []
        #expect(rows.count == 2 && rows[0]["id"] as? String == first)
    }

    @Test func aSnapshotRestoresWithoutItsListingOrTheEscrowedSecret() throws {
        let f = try SnapshotFixture()
        try f.dir.write("src/a/file1", random(300_000))
        try f.dir.write("src/b/file2", random(1 << 20))
        #expect(try f.snapshot().status == 0)
        let record = try f.records(0)[0]
        // A record names its listing; a second mirror's copy is untouched.
        #expect(record.format == 2 && record.newPacks == nil && record.listing?.path == ObjectName.listing(record.id).path)
        let listing = f.path(0, ObjectName.listing(record.id).path)
        var damaged = [UInt8](FileManager.default.contents(atPath: listing)!)
        damaged[damaged.count / 2] ^= 1
        try Data(damaged).write(to: URL(fileURLWithPath: listing))

        let target = f.dir.file("damaged")
        let r = try restore(f, ["latest", "--target", target])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains(ObjectName.listing(record.id).path) && r.stderr.contains("packs will be opened"))
        #expect(FileManager.default.contents(atPath: target + f.source + "/b/file2") == FileManager.default.contents(atPath: f.source + "/b/file2"))

        // With both mirrors as sources, the second's copy is used.
        let both = try restore(f, ["latest", "--target", f.dir.file("both")], from: [0, 1])
        #expect(both.status == 0 && !both.stderr.contains("listing"), "\(both.stderr)")

        // Without the escrow, chunks could not be checked: the restore refuses and names the bundle's
        // secret; with that secret it restores, every chunk checked.
        try FileManager.default.removeItem(atPath: f.path(0, ObjectName.escrow.path))
        let refused = try restore(f, ["latest", "--target", f.dir.file("refused")])
        #expect(refused.status == 65 && refused.stderr.contains("no escrowed client secret") && refused.stderr.contains("--secret"), "\(refused.stderr)")
        let plain = f.dir.file("noescrow")
        let n = try restore(f, ["latest", "--target", plain, "--secret", f.dir.file("etc/secret")])
        #expect(n.status == 0, "\(n.stderr)")
        #expect(FileManager.default.contents(atPath: plain + f.source + "/a/file1") == FileManager.default.contents(atPath: f.source + "/a/file1"))

        // The other mirror's listing is whole: no warning there.
        let whole = try restore(f, ["latest", "--target", f.dir.file("whole")], from: [1])
        #expect(whole.status == 0 && !whole.stderr.contains("listing"), "\(whole.stderr)")
    }

    @Test func hardlinksToFilesOutsideAPartialRestoreBecomeOneCopy() throws {
        let f = try SnapshotFixture()
        let original = random(300_000)
        try f.dir.write("src/data/original", original)
        try f.dir.write("src/links/plain", Array("plain".utf8))
        link(f.source + "/data/original", f.source + "/links/first")
        link(f.source + "/data/original", f.source + "/links/second")
        link(f.source + "/links/plain", f.source + "/links/third")
        #expect(try f.snapshot().status == 0)

        let target = f.dir.file("links")
        let r = try restore(f, ["latest", "--target", target, String(f.source.dropFirst()) + "/links"])
        #expect(r.status == 0, "\(r.stdout)\n\(r.stderr)")
        let links = target + f.source + "/links"
        #expect(!FileManager.default.fileExists(atPath: target + f.source + "/data"))
        var a = stat(), b = stat(), c = stat(), d = stat()
        #expect(stat(links + "/first", &a) == 0 && stat(links + "/second", &b) == 0)
        #expect(stat(links + "/plain", &c) == 0 && stat(links + "/third", &d) == 0)
        // The original, outside the chosen path, is restored once as a copy; the other link links to it.
        #expect(a.st_ino == b.st_ino && a.st_nlink == 2)
        #expect(c.st_ino == d.st_ino && c.st_nlink == 2)
        #expect(FileManager.default.contents(atPath: links + "/first") == Data(original))
        #expect(FileManager.default.contents(atPath: links + "/third") == Data("plain".utf8))
    }

    @Test func damagedPacksNameTheFilesAndTheRestIsRestored() throws {
        let f = try SnapshotFixture()
        for i in 0..<6 { try f.dir.write("src/f\(i)", random(700_000)) }
        #expect(try f.snapshot().status == 0)
        // Damage only packs of file data: without its trees nothing can be restored at all.
        let opener = f.opener
        let packs = try f.objects(0).filter { $0.hasSuffix(".pack") }.sorted().filter { p in
            try f.pack(0, p, opener: opener).entries.allSatisfy { $0.kind == .data }
        }
        #expect(packs.count >= 3)
        // Three kinds of damage, each on mirror 0 only; mirror 1 stays intact.
        let victims = Array(packs.prefix(3))
        for (i, p) in victims.enumerated() {
            let path = f.path(0, p)
            var bytes = [UInt8](FileManager.default.contents(atPath: path)!)
            switch i {
            case 0: unlink(path)                                            // missing
            case 1: bytes.removeLast(bytes.count / 2); try Data(bytes).write(to: URL(fileURLWithPath: path))  // truncated
            default: bytes[bytes.count / 2] ^= 0x10; try Data(bytes).write(to: URL(fileURLWithPath: path))    // tampered
            }
        }
        let target = f.dir.file("damaged")
        let r = try restore(f, ["latest", "--target", target])
        #expect(r.status == 65, "\(r.stdout) \(r.stderr)")
        let damaged = r.stdout.split(separator: "\n").filter { $0.hasPrefix("DAMAGED") }
        #expect(!damaged.isEmpty)
        for i in 0..<6 {
            let name = "f\(i)"
            let restored = target + f.source + "/" + name
            if damaged.contains(where: { $0.hasSuffix("/" + name) }) {
                #expect(!FileManager.default.fileExists(atPath: restored))
            } else {
                #expect(FileManager.default.contents(atPath: restored) == FileManager.default.contents(atPath: f.source + "/" + name))
            }
        }
        // With the other mirror as a second source, the restore is complete.
        let both = f.dir.file("both")
        let complete = try restore(f, ["latest", "--target", both], from: [0, 1])
        #expect(complete.status == 0, "\(complete.stdout) \(complete.stderr)")
        #expect(try manifest(both + f.source, ["--content-only"]) == manifest(f.source, ["--content-only"]))
        let verify = try CLI.run(["verify", "--from", f.mirrors[0].storageRoot, "--client", "c1",
                                  "--signing-key", f.dir.file("etc/signing.pub"), "--key", f.keysDirectory + "/private.pem", "latest"], environment: ["FBK_PASSPHRASE": f.passphrase])
        #expect(verify.status == 65)
    }

    @Test func restoreOverWebDAVWithAnOperatorAccount() throws {
        let f = try SnapshotFixture()
        try f.dir.write("src/a", random(1 << 20))
        try f.dir.write("src/b/c", Array("over the network".utf8))
        #expect(try f.snapshot().status == 0)
        let pw = try f.dir.write("operator-pw", Array("operator-pw\n".utf8))
        // Mirror 1 loses a pack; the restore completes it from mirror 0, both over HTTP.
        let pack = f.objects(1).first { $0.hasSuffix(".pack") }!
        unlink(f.path(1, pack))
        let target = f.dir.file("net")
        let r = try CLI.run(["restore", "--from", f.mirrors[1].operatorURL, "--from", f.mirrors[0].operatorURL,
                             "--user", "operator", "--password-file", pw, "--client", "c1",
                             "--signing-key", f.dir.file("etc/signing.pub"), "--key", f.keysDirectory + "/private.pem", "latest", "--target", target],
                            environment: ["FBK_PASSPHRASE": f.passphrase])
        #expect(r.status == 0, "\(r.stdout) \(r.stderr)")
        #expect(try manifest(target + f.source, ["--content-only"]) == manifest(f.source, ["--content-only"]))
        // A client's own account cannot read through the operator port, nor through its own.
        let clientPw = try f.dir.write("client-pw", Array("pw-c1\n".utf8))
        let denied = try CLI.run(["snapshots", "--from", f.mirrors[0].operatorURL, "--user", "c1", "--password-file", clientPw,
                                  "--client", "c1", "--signing-key", f.dir.file("etc/signing.pub"), "--key", f.keysDirectory + "/private.pem"],
                                 environment: ["FBK_PASSPHRASE": f.passphrase])
        #expect(denied.status == 64)
        #expect(denied.stderr.contains("HTTP 401"), "\(denied.stderr)")
        let viaClientPort = try runTool("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "-u", "c1:pw-c1",
                                                 f.mirrors[0].url("c1") + f.objects(0).first { $0.hasSuffix(".pack") }!])
        #expect(String(decoding: viaClientPort.stdout, as: UTF8.self) == "403")
    }

    @Test func restoreRefusesANonEmptyTarget() throws {
        let f = try SnapshotFixture()
        try f.dir.write("src/x", [1])
        #expect(try f.snapshot().status == 0)
        try f.dir.write("busy/existing", [2])
        let r = try restore(f, ["latest", "--target", f.dir.file("busy")])
        #expect(r.status == 64)
        #expect(r.stderr.contains("not empty"))
    }
}
