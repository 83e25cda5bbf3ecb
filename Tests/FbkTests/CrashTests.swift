import Foundation
import Seal
import Testing
import TestSupport

/// Crash consistency: fbk snapshot killed with SIGKILL at seeded random
/// moments, rerun after each; the invariants of FORMAT.md section 9 hold
/// after every kill, and the final snapshot restores to the source.
/// Small by default; FBK_SLOW_TESTS=1 runs the full harness (about 300 MiB,
/// 50 kills), as `make crash-test` does.
@Suite(.serialized, .hangGuard) struct CrashTests {
    static let slow = ProcessInfo.processInfo.environment["FBK_SLOW_TESTS"] != nil

    /// xorshift64*: the kill schedule is reproducible from the seed.
    struct Seeded {
        var s: UInt64
        mutating func next() -> UInt64 { s ^= s >> 12; s ^= s << 25; s ^= s >> 27; return s &* 0x2545_F491_4F6C_DD1D }
        mutating func unit() -> Double { Double(next() >> 11) / Double(1 << 53) }
    }

    func writeTree(_ f: SnapshotFixture, mebibytes: Int, rng: inout Seeded) throws {
        for i in 0..<max(4, mebibytes / 4) {
            var bytes = [UInt8](repeating: 0, count: 4 << 20)
            bytes.withUnsafeMutableBytes { raw in
                for j in 0..<raw.count / 8 { raw.storeBytes(of: rng.next(), toByteOffset: j * 8, as: UInt64.self) }
            }
            try f.dir.write("src/d\(i % 7)/file\(i)", bytes)
        }
    }

    /// A few changes between runs, so each rerun has new work to do.
    func change(_ f: SnapshotFixture, _ round: Int, rng: inout Seeded) throws {
        try f.dir.write("src/changed/round\(round)", (0..<(256 << 10)).map { _ in UInt8(truncatingIfNeeded: rng.next()) })
    }

    @Test func killedSnapshotsLeaveAConsistentIndexAndTheRerunCompletes() throws {
        let mebibytes = Self.slow ? 320 : 24
        let kills = Self.slow ? 50 : 6
        var rng = Seeded(s: 0xF0B_C0FFEE)
        let f = try SnapshotFixture()
        try writeTree(f, mebibytes: mebibytes, rng: &rng)
        // How long an undisturbed first run takes sets the range of kill times.
        let clock = ContinuousClock()
        let t0 = clock.now
        #expect(try f.snapshot().status == 0)
        let full = (clock.now - t0).components
        let runSeconds = max(0.3, Double(full.seconds) + Double(full.attoseconds) / 1e18)
        for round in 0..<kills {
            try change(f, round, rng: &rng)
            // Half the kills hit a rerun right after a modification of a tenth of the tree.
            if round % 2 == 1 { try f.dir.write("src/d0/file0", (0..<(4 << 20)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }) }
            let delay = rng.unit() * runSeconds
            let pid = try spawnDetached(CLI.binary.path, ["snapshot", "--config", f.configPath], environment: ProcessInfo.processInfo.environment,
                                        stdout: f.dir.file("kill.out"), stderr: f.dir.file("kill.err"))
            usleep(UInt32(delay * 1_000_000))
            kill(pid, SIGKILL)
            _ = waitForExit(pid)
            try f.checkInvariants(after: "kill \(round) at \(String(format: "%.2f", delay)) s")
            let rerun = try f.snapshot()
            #expect(rerun.status == 0, "rerun after kill \(round): \(rerun.stderr)")
            try f.checkInvariants(after: "rerun \(round)")
        }
        // The final snapshot restores to exactly the source.
        let target = f.dir.file("restored")
        let r = try CLI.run(["restore", "--from", f.mirrors[0].storageRoot, "--from", f.mirrors[1].storageRoot, "--client", "c1",
                             "--signing-key", f.dir.file("etc/signing.pub"), "--key", f.keysDirectory + "/private.pem", "latest", "--target", target],
                            environment: ["FBK_PASSPHRASE": f.passphrase])
        #expect(r.status == 0, "\(r.stdout) \(r.stderr)")
        let manifest = repositoryRoot + "/Tests/Fixtures/manifest.py"
        let a = try runTool("python3", [manifest, f.source, "--content-only"]).stdout
        let b = try runTool("python3", [manifest, target + f.source, "--content-only"]).stdout
        #expect(a == b)
    }

    @Test func sigtermStopsCleanlyWithinSeconds() throws {
        var rng = Seeded(s: 77)
        let f = try SnapshotFixture()
        try writeTree(f, mebibytes: Self.slow ? 256 : 48, rng: &rng)
        let pid = try spawnDetached(CLI.binary.path, ["snapshot", "--config", f.configPath], environment: ProcessInfo.processInfo.environment,
                                    stdout: f.dir.file("term.out"), stderr: f.dir.file("term.err"))
        usleep(400_000)
        let sent = ContinuousClock.now
        kill(pid, SIGTERM)
        let status = waitForExit(pid)
        let took = (ContinuousClock.now - sent).components.seconds
        let stderr = (try? String(contentsOfFile: f.dir.file("term.err"), encoding: .utf8)) ?? ""
        // Either it was stopped (130) or it had already finished (0).
        #expect(status == 130 || status == 0, "\(stderr)")
        if status == 130 { #expect(stderr.contains("stopped by a signal")) }
        #expect(took < 10)
        try f.checkInvariants(after: "SIGTERM")
        #expect(try f.snapshot().status == 0)
        try f.checkInvariants(after: "rerun after SIGTERM")
    }
}
