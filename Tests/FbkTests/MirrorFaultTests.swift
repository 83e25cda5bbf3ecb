import Foundation
import Index
import Testing
import TestSupport

/// Mirror faults injected by a small proxy (Tests/Fixtures/fault_proxy.py)
/// in front of real nginx: a faulty mirror never stops the backup, its
/// objects wait in the spool, and once the fault clears they are delivered.
@Suite(.hangGuard) struct MirrorFaultTests {
    final class FaultProxy {
        let pid: pid_t
        let port: Int
        let modeFile: String

        init(upstream: Int, dir: TemporaryDirectory, name: String) throws {
            port = try freePort()
            modeFile = dir.file("\(name).mode")
            try "pass".write(toFile: modeFile, atomically: true, encoding: .utf8)
            pid = try spawnDetached("/usr/bin/python3", [repositoryRoot + "/Tests/Fixtures/fault_proxy.py", String(port), String(upstream), modeFile],
                                    environment: ProcessInfo.processInfo.environment,
                                    stdout: dir.file("\(name).out"), stderr: dir.file("\(name).err"))
            for _ in 0..<100 where !FileManager.default.contents(atPath: dir.file("\(name).out")).map({ !$0.isEmpty })! {
                usleep(20_000)
            }
        }

        func set(_ mode: String) throws { try mode.write(toFile: modeFile, atomically: true, encoding: .utf8) }
        func url(_ client: String) -> String { "http://127.0.0.1:\(port)/\(client)/" }
        deinit {
            kill(pid, SIGKILL)
            _ = waitForExit(pid)
        }
    }

    /// Puts proxies in front of the chosen mirrors by rewriting the client's configuration.
    func proxied(_ f: SnapshotFixture, mirrors: [Int]) throws -> [FaultProxy] {
        var text = try String(contentsOfFile: f.configPath, encoding: .utf8)
        var proxies: [FaultProxy] = []
        for i in mirrors {
            let p = try FaultProxy(upstream: f.mirrors[i].port, dir: f.dir, name: "proxy\(i)")
            text = text.replacingOccurrences(of: f.mirrors[i].url("c1"), with: p.url("c1"))
            proxies.append(p)
        }
        text = text.replacingOccurrences(of: "stall_timeout: 30", with: "stall_timeout: 2")
        try text.write(toFile: f.configPath, atomically: true, encoding: .utf8)
        return proxies
    }

    func spool(_ f: SnapshotFixture) -> [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: f.dir.file("state/spool"))) ?? []
    }

    @Test(arguments: ["500", "503", "507", "401", "slow", "reset", "truncated"])
    func oneFaultyMirrorDoesNotStopTheBackup(_ fault: String) throws {
        let f = try SnapshotFixture()
        let proxy = try proxied(f, mirrors: [1])[0]
        try f.dir.write("src/a", (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 7) })
        try proxy.set(fault)
        let faulty = try f.snapshot()
        // Stored on the other mirror: 4 for a mirror that is down or failing, 5 for one that refuses this client.
        #expect(faulty.status == (fault == "401" ? 5 : 4), "\(fault): \(faulty.stderr)")
        let state = (faulty.summary["mirrors"] as? [[String: Any]])?.first { $0["url"] as? String == proxy.url("c1") }?["state"] as? String
        #expect(state == (fault == "401" ? "misconfigured" : "behind"), "\(fault)")
        #expect(faulty.summary["mirrors_behind"] as? [String] == [proxy.url("c1")], "\(fault)")
        #expect(!spool(f).isEmpty, "\(fault): nothing kept for the faulty mirror")
        #expect(f.objects(1).isEmpty, "\(fault): an object reached the faulty mirror")

        try proxy.set("pass")
        let healed = try f.snapshot()
        #expect(healed.status == 0, "\(fault) cleared: \(healed.stderr)")
        #expect(spool(f).isEmpty)
        #expect(f.objects(0) == f.objects(1))
    }

    @Test(arguments: ["503", "reset"])
    func bothFaultyFailsClearlyAndRecordsNothing(_ fault: String) throws {
        let f = try SnapshotFixture()
        let proxies = try proxied(f, mirrors: [0, 1])
        try f.dir.write("src/a", (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 3) })
        for p in proxies { try p.set(fault) }
        let r = try f.snapshot()
        #expect(r.status == 75, "\(fault): \(r.stderr)")
        #expect(r.stderr.contains("no mirror stored"), "\(r.stderr)")
        let index = try Index.open(path: f.dir.file("state/index.sqlite"))
        #expect(try index.ledger.snapshotIDs.isEmpty && index.chunks.chunkCount == 0)
        for p in proxies { try p.set("pass") }
        #expect(try f.snapshot().status == 0)
        #expect(f.objects(0) == f.objects(1))
    }

    /// A mirror that accepts connections and never answers held a run for
    /// minutes: every retry waited the whole stall timeout again. It is now
    /// asked once a run, and what it lacks is spooled for the next.
    @Test func aSilentMirrorIsAskedOnceARun() throws {
        let f = try SnapshotFixture()
        let proxy = try proxied(f, mirrors: [1])[0]
        var text = try String(contentsOfFile: f.configPath, encoding: .utf8)
        text = text.replacingOccurrences(of: "retry_delays: [0.1]", with: "retry_delays: [0.1, 0.1, 0.1]")
        try text.write(toFile: f.configPath, atomically: true, encoding: .utf8)
        for i in 0..<3 { try f.dir.write("src/f\(i)", (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* (i + 3)) }) }
        try proxy.set("slow")
        let r = try f.snapshot()
        #expect(r.status == 4, "\(r.stderr)")
        let attempts = try String(contentsOfFile: proxy.modeFile + ".log", encoding: .utf8).split(separator: "\n").filter { $0 == "slow" }
        #expect(attempts.count == 1, "the silent mirror was asked \(attempts.count) times")
        #expect(!spool(f).isEmpty)
    }
}
