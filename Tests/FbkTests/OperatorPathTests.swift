// What an operator following the README met (issue 18): small things that
// make output trustworthy to read and to script.

import Foundation
import Seal
@testable import Platform
@testable import Index
@testable import Archiver
import Testing
import TestSupport

@Suite struct OperatorPathTests {
    @Test func oneVersionForTheCommandTheSummariesAndTheUserAgent() throws {
        let version = try CLI.run(["--version"])
        #expect(version.status == 0 && version.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == fbkVersion)
        let f = try SnapshotFixture()
        try f.dir.write("src/a", sampleBytes(10_000))
        let s = try f.snapshot()
        #expect(s.summary["version"] as? String == fbkVersion)
        let log = try String(contentsOfFile: f.mirrors[0].prefix.file("logs/access.log"), encoding: .utf8)
        #expect(log.contains("fbk/\(fbkVersion)"), "\(log.suffix(300))")
    }

    @Test func lsShowsSetIDAndStickyBitsSnapshotsAlignAndVerifyCountsFiles() throws {
        let f = try SnapshotFixture()
        try FileManager.default.createDirectory(atPath: f.source + "/shared", withIntermediateDirectories: true)
        chmod(f.source + "/shared", 0o1777)
        let tool = try f.dir.write("src/tool", Array("#!/bin/sh\n".utf8))
        chmod(tool, 0o4755)
        try f.dir.write("src/data", sampleBytes(300_000))
        #expect(try f.snapshot().status == 0)
        Thread.sleep(forTimeInterval: 1.1)
        #expect(try f.snapshot().status == 0)
        let common = ["--from", f.mirrors[0].storageRoot, "--client", "c1", "--signing-key", f.dir.file("etc/signing.pub"),
                      "--key", f.keysDirectory + "/private.pem"]
        let env = ["FBK_PASSPHRASE": f.passphrase]
        let rel = String(f.source.dropFirst())
        let ls = try CLI.run(["ls"] + common + ["latest", rel], environment: env)
        #expect(ls.status == 0)
        let lines = ls.stdout.split(separator: "\n")
        #expect(lines.contains { $0.hasPrefix("drwxrwxrwt") && $0.hasSuffix("/shared") }, "\(ls.stdout)")
        #expect(lines.contains { $0.hasPrefix("-rwsr-xr-x") && $0.hasSuffix("/tool") }, "\(ls.stdout)")

        let list = try CLI.run(["snapshots"] + common, environment: env)
        #expect(list.status == 0)
        let rows = list.stdout.split(separator: "\n").map(String.init)
        #expect(rows.count == 3)
        // Every column starts where the header's does; sizes are for people.
        let header = rows[0]
        for column in ["started", "host", "paths"] {
            let at = header.range(of: column)!.lowerBound.utf16Offset(in: header)
            for row in rows.dropFirst() { #expect(row.utf16.count > at && Array(row.utf16)[at - 1] == 32 && Array(row.utf16)[at] != 32, "\(rows)") }
        }
        #expect(rows.dropFirst().allSatisfy { $0.contains(" KiB") }, "\(rows)")

        let verify = try CLI.run(["verify"] + common + ["latest", "--json"], environment: env)
        let summary = try JSONSerialization.jsonObject(with: verify.stdoutBytes) as? [String: Any] ?? [:]
        #expect(verify.status == 0)
        #expect(summary["files"] as? Int == 2)
        #expect(summary["version"] as? String == fbkVersion)
    }

    @Test func aConfiguredPathThatDoesNotExistIsAPartialRun() throws {
        let f = try SnapshotFixture()
        try f.dir.write("src/a", sampleBytes(10_000))
        var text = try String(contentsOfFile: f.configPath, encoding: .utf8)
        let gone = f.dir.file("gone")
        text = text.replacingOccurrences(of: "paths:\n", with: "paths:\n  - \"\(gone)\"\n")
        try text.write(toFile: f.configPath, atomically: true, encoding: .utf8)
        #expect(text.contains(gone))
        let r = try f.snapshot()
        #expect(r.status == 3, "\(r.stderr)")
        #expect(r.summary["missing_paths"] as? [String] == [gone])
        let plain = try CLI.run(["snapshot", "--config", f.configPath])
        #expect(plain.status == 3 && plain.stdout.contains("MISSING: configured path \(gone)"), "\(plain.stdout)")
    }

    @Test func aMirrorThatRefusesIsMisconfiguredNotDown() throws {
        let f = try SnapshotFixture()
        try f.dir.write("src/a", sampleBytes(10_000))
        var text = try String(contentsOfFile: f.configPath, encoding: .utf8)
        // Another client's directory: nginx answers 403 every day, for ever.
        text = text.replacingOccurrences(of: f.mirrors[1].url("c1"), with: f.mirrors[1].url("c2"))
        try text.write(toFile: f.configPath, atomically: true, encoding: .utf8)
        let r = try f.snapshot()
        #expect(r.status == 5, "\(r.stderr)")
        let states = (r.summary["mirrors"] as? [[String: Any]] ?? []).map { $0["state"] as? String }
        #expect(states == ["ok", "misconfigured"], "\(r.summary)")
        let plain = try CLI.run(["snapshot", "--config", f.configPath])
        #expect(plain.status == 5 && plain.stdout.contains("REFUSES uploads, misconfigured"), "\(plain.stdout)")
    }

    @Test func aRespelledMirrorURLIsTheSameMirror() throws {
        let f = try SnapshotFixture()
        try f.dir.write("src/a", sampleBytes(10_000))
        #expect(try f.snapshot().status == 0)
        var text = try String(contentsOfFile: f.configPath, encoding: .utf8)
        let url = f.mirrors[1].url("c1")
        text = text.replacingOccurrences(of: url, with: String(url.dropLast()))
        try text.write(toFile: f.configPath, atomically: true, encoding: .utf8)
        let r = try f.snapshot()
        #expect(r.status == 0, "\(r.stderr)")
        #expect((r.summary["mirrors_behind"] as? [String])?.isEmpty == true, "\(r.summary)")
    }

    /// Every hint is a command that works when pasted (issue 18, item 8).
    @Test func theMissingIndexHintRunsAsPrinted() throws {
        let dir = try TemporaryDirectory()
        #expect(try CLI.run(["keygen", "--out", dir.file("keys"), "--type", "p384"], environment: ["FBK_PASSPHRASE": "long enough passphrase"]).status == 0)
        for m in ["m1/c9", "m2/c9"] { try FileManager.default.createDirectory(atPath: dir.file(m), withIntermediateDirectories: true) }
        try dir.write("src/a", sampleBytes(100_000))
        let config = dir.file("etc/fbk.conf")
        let initialized = try CLI.run(["init", "--config", config, "--client", "c9", "--recipient", dir.file("keys/recipient.pem"),
                                       "--mirror", "file://" + dir.file("m1/c9") + "/", "--mirror", "file://" + dir.file("m2/c9") + "/",
                                       "--state", dir.file("state"), dir.file("src")])
        #expect(initialized.status == 0, "\(initialized.stderr)")
        #expect(try CLI.run(["snapshot", "--config", config]).status == 0)
        try FileManager.default.removeItem(atPath: dir.file("state/index.sqlite"))
        let lost = try CLI.run(["snapshot", "--config", config])
        #expect(lost.status == 66)
        let hint = try #require(lost.stderr.split(separator: "\n").first { $0.contains("fbk index rebuild") })
            .trimmingCharacters(in: .whitespaces)
        let rebuild = try runTool("sh", ["-c", hint.replacingOccurrences(of: "fbk index", with: "'\(CLI.binary.path)' index")])
        #expect(rebuild.status == 0, "\(hint): \(rebuild.stderr)")
        let again = try CLI.run(["snapshot", "--config", config, "--json"])
        #expect(again.status == 0, "\(again.stderr)")
        // A configuration that is not there says what to give, not only that it cannot be read.
        let missing = try CLI.run(["snapshot", "--config", dir.file("nope.conf")])
        #expect(missing.status == 64 && missing.stderr.contains("there is no configuration") && missing.stderr.contains("fbk init --config"))
    }

    @Test func mirrorSyncTakesRelativeRoots() throws {
        let dir = try TemporaryDirectory()
        try dir.write("a/c1/packs/ab/obj", [1, 2, 3])
        try FileManager.default.createDirectory(atPath: dir.file("b"), withIntermediateDirectories: true)
        let r = try runTool("sh", ["-c", "cd '\(dir.path)' && '\(CLI.binary.path)' mirror-sync a b"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(dir.read("b/c1/packs/ab/obj") == [1, 2, 3])
    }

    @Test func theProgressLineShowsAShareAndTimeLeftFromTheLastRun() throws {
        let f = try SnapshotFixture()
        try f.dir.write("src/a", sampleBytes(200_000))
        let first = try f.snapshot()
        #expect(first.status == 0)
        let index = try Index.open(path: f.dir.file("state/index.sqlite"))
        let last = try #require(try index.ledger.lastSnapshotBytesScanned())
        #expect(last == UInt64(first.summary["bytes_scanned"] as? Int ?? -1))
        let p = SnapshotProgress(files: 10, bytesScanned: last / 4, elapsed: 10, expectedBytes: last)
        #expect(p.line().hasSuffix(", 25% of last time's size, about 30 s left"), "\(p.line())")
        #expect(SnapshotProgress(bytesScanned: 2 * last, elapsed: 3, expectedBytes: last).line().hasSuffix("past last time's size"))
        #expect(!SnapshotProgress(bytesScanned: 5, elapsed: 3).line().contains("%"))
    }

    @Test func aMalformedMirrorURLIsRefusedBeforeAnythingIsWritten() throws {
        let dir = try TemporaryDirectory()
        #expect(try CLI.run(["keygen", "--out", dir.file("keys"), "--type", "p384"], environment: ["FBK_PASSPHRASE": "long enough passphrase"]).status == 0)
        let r = try CLI.run(["enroll", "web9", "--mirror", "http://[::1]8084/web9/", "--recipient", dir.file("keys/recipient.pem"),
                             "--out", dir.file("bundles")])
        #expect(r.status == 64 && r.stderr.contains("--mirror http://[::1]8084/web9/"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.file("bundles/web9")))
        // In a configuration, the same URL names the file and line.
        let f = try SnapshotFixture()
        var text = try String(contentsOfFile: f.configPath, encoding: .utf8)
        text = text.replacingOccurrences(of: f.mirrors[1].url("c1"), with: "http://[::1]8084/c1/")
        try text.write(toFile: f.configPath, atomically: true, encoding: .utf8)
        let s = try CLI.run(["snapshot", "--config", f.configPath])
        #expect(s.status == 64 && s.stderr.contains(f.configPath + ":") && s.stderr.contains("is not a valid URL"), "\(s.stderr)")
    }

    /// A path given by mistake (a directory, a FIFO, /dev/zero, a file of
    /// gigabytes) where fbk expects a small file is refused at once, saying
    /// what is wrong with it: no hang waiting on a FIFO, no allocation of
    /// its size, no advice about permissions it does not need.
    @Test(.hangGuard) func filesNamedByMistakeAreRefusedAtOnceWithWhatIsWrong() throws {
        let dir = try TemporaryDirectory()
        let fifo = dir.file("fifo")
        #expect(mkfifo(fifo, 0o600) == 0)
        let big = dir.file("big.conf")
        let fd = open(big, O_CREAT | O_WRONLY, 0o600)
        #expect(fd >= 0 && ftruncate(fd, 3 << 30) == 0)
        close(fd)
        try FileManager.default.createDirectory(atPath: dir.file("adir"), withIntermediateDirectories: true)
        for (path, expected) in [(dir.file("adir"), "is not a regular file"), (fifo, "is not a regular file"),
                                 ("/dev/zero", "is not a regular file"), (big, "is larger than 1048576 bytes"),
                                 (dir.file("none.conf"), "there is no configuration")] {
            let r = try CLI.run(["snapshot", "--config", path])
            #expect(r.status == 64 && r.stderr.contains(expected) && !r.stderr.contains("sudo"), "\(path): \(r.stderr)")
        }

        // Files a valid configuration names.
        let f = try SnapshotFixture()
        try f.dir.write("src/a", sampleBytes(10_000))
        #expect(try f.snapshot().status == 0)
        func swapForFIFO(_ path: String, _ body: () throws -> Void) throws {
            #expect(rename(path, path + ".real") == 0 && mkfifo(path, 0o600) == 0)
            defer { unlink(path); rename(path + ".real", path) }
            try body()
        }
        try swapForFIFO(f.dir.file("password")) {
            let r = try CLI.run(["snapshot", "--config", f.configPath])
            #expect(r.status == 64 && r.stderr.contains("password file \(f.dir.file("password")) (for ") && r.stderr.contains("is not a regular file"), "\(r.stderr)")
        }
        try swapForFIFO(f.dir.file("etc/secret")) {
            let r = try CLI.run(["snapshot", "--config", f.configPath])
            #expect(r.status == 64 && r.stderr.contains("client secret \(f.dir.file("etc/secret")) is not a regular file"), "\(r.stderr)")
        }
        try f.configure("exclude_from: [\"\(fifo)\"]")
        let excluded = try CLI.run(["snapshot", "--config", f.configPath])
        #expect(excluded.status == 64 && excluded.stderr.contains("exclude_from file \(fifo) is not a regular file"), "\(excluded.stderr)")

        // The operator's side: signing key, private key, passphrase file.
        let restore = { (signing: String, key: String, extra: [String]) in
            try CLI.run(["restore", "--from", f.mirrors[0].storageRoot, "--client", "c1", "--signing-key", signing,
                         "--key", key, "latest", "--target", dir.file("out")] + extra, environment: ["FBK_PASSPHRASE": f.passphrase])
        }
        let signing = f.dir.file("etc/signing.pub"), key = f.keysDirectory + "/private.pem"
        try swapForFIFO(signing) {
            let r = try restore(signing, key, [])
            #expect(r.status != 0 && r.stderr.contains("signing key \(signing) is not a regular file"), "\(r.stderr)")
        }
        try swapForFIFO(key) {
            let r = try restore(signing, key, [])
            #expect(r.status == 66 && r.stderr.contains("not a regular file"), "\(r.stderr)")
        }
        let r = try restore(signing, key, ["--passphrase-file", fifo])
        #expect(r.status == 77 && r.stderr.contains("passphrase file \(fifo) is not a regular file"), "\(r.stderr)")
        let restored = try restore(signing, key, [])
        #expect(restored.status == 0, "\(restored.stderr)")
    }
}
