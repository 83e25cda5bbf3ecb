import Foundation
import Testing
import TestSupport

/// `fbk mount`: snapshots as a read-only FUSE file system, tested by
/// mounting for real (libfuse3, /dev/fuse). Where the machine has no
/// /dev/fuse (some containers) the test cannot run, and says so; the CI
/// machine has it, and install-deps.sh installs fuse3.
@Suite(.serialized, .hangGuard) struct MountTests {
    static let fuse = FileManager.default.fileExists(atPath: "/dev/fuse")

    @Test(.enabled(if: MountTests.fuse, "/dev/fuse is missing: fbk mount cannot be tried here"))
    func everySnapshotReadsAsAFileSystem() async throws {
        let f = try SnapshotFixture()
        try f.dir.write("src/small", Array("the first version\n".utf8))
        #expect(try f.snapshot().status == 0)
        try await Task.sleep(for: .seconds(2))
        let big = sampleBytes(3_000_000, seed: 4)
        try f.dir.write("src/small", Array("the second version\n".utf8))
        try f.dir.write("src/dir/big", big)
        #expect(symlink("dir/big", f.source + "/link") == 0)
        #expect(link(f.source + "/dir/big", f.source + "/hard") == 0)
        #expect(try f.snapshot().status == 0)

        let mountpoint = f.dir.file("mnt")
        try FileManager.default.createDirectory(atPath: mountpoint, withIntermediateDirectories: true)
        var env = ProcessInfo.processInfo.environment
        env["FBK_PASSPHRASE"] = f.passphrase
        let pid = try spawnDetached(CLI.binary.path, ["mount", "--from", f.mirrors[0].storageRoot, "--client", "c1",
                                                      "--signing-key", f.dir.file("etc/signing.pub"), "--key", f.keysDirectory + "/private.pem",
                                                      mountpoint], environment: env, stdout: f.dir.file("mount.out"), stderr: f.dir.file("mount.err"))
        var ended: Int32?
        defer {
            if ended == nil {
                _ = try? runTool("fusermount3", ["-u", "-z", mountpoint])
                kill(pid, SIGKILL)
                _ = waitForExit(pid)
            }
        }
        for _ in 0..<200 where !FileManager.default.fileExists(atPath: mountpoint + "/snapshots") { try await Task.sleep(for: .milliseconds(50)) }
        let err = (try? String(contentsOfFile: f.dir.file("mount.err"), encoding: .utf8)) ?? ""
        try #require(FileManager.default.fileExists(atPath: mountpoint + "/snapshots"), "not mounted: \(err)")

        let snapshots = try FileManager.default.contentsOfDirectory(atPath: mountpoint + "/snapshots")
        #expect(snapshots.count == 2, "\(snapshots)")
        let latest = mountpoint + "/latest" + f.source
        #expect(try FileManager.default.contentsOfDirectory(atPath: latest).sorted() == ["dir", "hard", "link", "small"])
        #expect(try String(contentsOfFile: latest + "/small", encoding: .utf8) == "the second version\n")
        let older = mountpoint + "/snapshots/" + snapshots.sorted()[0] + f.source
        #expect(try String(contentsOfFile: older + "/small", encoding: .utf8) == "the first version\n")
        #expect(!FileManager.default.fileExists(atPath: older + "/dir"))
        let whole = FileManager.default.contents(atPath: latest + "/dir/big").map([UInt8].init) == big
        #expect(whole, "a file of many chunks reads whole")
        let handle = try #require(FileHandle(forReadingAtPath: latest + "/dir/big"))
        try handle.seek(toOffset: 1_234_567)
        let piece = handle.readData(ofLength: 70_000).map { $0 } == Array(big[1_234_567..<1_304_567])
        #expect(piece, "a read at an offset")
        try handle.close()
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: latest + "/link") == "dir/big")
        let viaHardlink = FileManager.default.contents(atPath: latest + "/hard").map([UInt8].init) == big
        #expect(viaHardlink)
        var st = stat()
        #expect(lstat(latest + "/dir/big", &st) == 0 && st.st_size == 3_000_000)
        #expect(!FileManager.default.createFile(atPath: latest + "/new", contents: Data("x".utf8)), "read-only")

        // Tests beside this one start programs and mount namespaces: a child
        // may hold a file of the mount for a moment (EBUSY), and `unshare -m`
        // copies the mount into a namespace that keeps fbk mount serving
        // until it ends. So the unmount is retried, and the wait is bounded;
        // both wait without holding a pool thread of Swift Testing's.
        var unmount = try await runToolOffPool("fusermount3", ["-u", mountpoint])
        for _ in 0..<100 where unmount.status != 0 && unmount.stderr.contains("busy") {
            try await Task.sleep(for: .milliseconds(200))
            unmount = try await runToolOffPool("fusermount3", ["-u", mountpoint])
        }
        #expect(unmount.status == 0, "\(unmount.stderr)")
        ended = await awaitExit(pid, seconds: 120)
        #expect(ended == 0, "fbk mount ends cleanly once unmounted: \(ended.map(String.init) ?? "still running 120 s later") \(err)")
    }
}
