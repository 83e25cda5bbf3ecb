import Foundation
import Seal
import Format
import Testing
import TestSupport

/// Days simulated on a real client and two real nginx mirrors: the client's
/// clock is FBK_TEST_NOW, the servers' receipt times are the files' times,
/// set to the simulated day after each run (no sleeps).
final class RetentionSimulation: @unchecked Sendable {
    let f: SnapshotFixture
    /// Simulated day 0, far enough in the past that every simulated time is
    /// before the real one (files a run creates are recognised by their real times).
    let origin = (Date().timeIntervalSince1970 / 86_400).rounded(.down) * 86_400 - 900 * 86_400
    let realStart = Date().timeIntervalSince1970 - 5

    init(horizonDays: Int = 14, policy: String = "keep_within: 20d\n      keep_last: 2\n      keep_weekly: 3") throws {
        f = try SnapshotFixture()
        var text = try String(contentsOfFile: f.configPath, encoding: .utf8)
        text = text.replacingOccurrences(of: "reuse_horizon: 14d", with: "reuse_horizon: \(horizonDays)d")
        try text.write(toFile: f.configPath, atomically: true, encoding: .utf8)
        self.policy = policy
    }

    let policy: String

    func time(_ day: Double) -> Double { origin + day * 86_400 + 3 * 3600 }

    /// A snapshot taken on `day`; what it uploaded is stamped as received then.
    @discardableResult
    func snapshot(day: Double, environment: [String: String] = [:]) throws -> [String: Any] {
        var env = ["FBK_TEST_NOW": String(time(day))]
        for (k, v) in environment { env[k] = v }
        let r = try CLI.run(["snapshot", "--config", f.configPath, "--json"], environment: env)
        #expect(r.status == 0, "day \(day): \(r.stderr)")
        stamp(time(day) + 600)
        return (try? JSONSerialization.jsonObject(with: r.stdoutBytes)) as? [String: Any] ?? [:]
    }

    /// A snapshot a day over `days`, each after giving the file `name(day)`
    /// `size` new bytes (seeded by the day).
    func takeDays(_ days: Range<Int>, size: Int, seed: UInt64, name: (Int) -> String) throws {
        for day in days {
            try Data(sampleBytes(size, seed: UInt64(day) + seed)).write(to: URL(fileURLWithPath: f.source + "/" + name(day)))
            try snapshot(day: Double(day))
        }
    }

    /// A snapshot that may leave a mirror behind (exit 4).
    func snapshotAllowingBehind(day: Double) throws -> [String: Any] {
        let r = try CLI.run(["snapshot", "--config", f.configPath, "--json"], environment: ["FBK_TEST_NOW": String(time(day))])
        #expect(r.status == 0 || r.status == 4, "day \(day): \(r.stderr)")
        stamp(time(day) + 600)
        return (try? JSONSerialization.jsonObject(with: r.stdoutBytes)) as? [String: Any] ?? [:]
    }

    /// Sets the time of every file created since the test began to `t`.
    func stamp(_ t: Double) {
        for m in f.mirrors {
            let root = m.storageRoot
            guard let e = FileManager.default.enumerator(atPath: root) else { continue }
            while let rel = e.nextObject() as? String {
                var st = stat()
                let path = root + "/" + rel
                guard lstat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG, Double(st.st_mtim.tv_sec) >= realStart else { continue }
                var times = [timespec(tv_sec: Int(t), tv_nsec: 0), timespec(tv_sec: Int(t), tv_nsec: 0)]
                utimensat(AT_FDCWD, path, &times, 0)
            }
        }
    }

    func checkConfig() throws -> String {
        let key = try String(contentsOfFile: f.dir.file("etc/signing.pub"), encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        var lines = ["clients:", "  - name: c1", "    kind: fbk", "    signing_key: \(key)", "    max_age: 36h", "    retention:"]
        lines += policy.split(separator: "\n").map { "      " + $0.trimmingCharacters(in: .whitespaces) }
        lines.append("trash_grace: 10d")
        return try f.dir.write("check.conf", Array((lines.joined(separator: "\n") + "\n").utf8))
    }

    func prune(_ mirror: Int, day: Double, _ extra: [String] = []) throws -> (status: Int32, plan: [String: Any], text: String) {
        let r = try CLI.run(["prune", "--config", try checkConfig(), "--root", f.mirrors[mirror].storageRoot, "--json"] + extra,
                            environment: ["FBK_TEST_NOW": String(time(day) + 7200)])
        let json = (try? JSONSerialization.jsonObject(with: r.stdoutBytes)) as? [String: Any] ?? [:]
        return (r.status, json, r.stdout + r.stderr)
    }

    func check(_ mirror: Int, day: Double) throws -> (status: Int32, text: String) {
        let r = try CLI.run(["check", "--config", try checkConfig(), "--root", f.mirrors[mirror].storageRoot],
                            environment: ["FBK_TEST_NOW": String(time(day) + 7200)])
        return (r.status, r.stdout + r.stderr)
    }

    /// Bytes of every object of the client on a mirror.
    func storedBytes(_ mirror: Int) -> Int {
        f.objects(mirror).reduce(0) { $0 + ((try? FileManager.default.attributesOfItem(atPath: f.path(mirror, $1))[.size] as? Int) ?? 0) }
    }

    func restore(_ snapshot: String, from mirror: Int, key: String? = nil, to target: String) throws -> (status: Int32, text: String) {
        let r = try CLI.run(["restore", "--from", f.mirrors[mirror].storageRoot, "--client", "c1",
                             "--signing-key", f.dir.file("etc/signing.pub"), "--key", key ?? (f.keysDirectory + "/private.pem"),
                             "--accept-future-dated", snapshot, "--target", target],
                            environment: ["FBK_PASSPHRASE": f.passphrase])
        return (r.status, r.stdout + r.stderr)
    }

    /// The client's files (relative path → content), as they are now.
    func tree() throws -> [String: [UInt8]] {
        var out: [String: [UInt8]] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: f.source) {
            out[name] = [UInt8](FileManager.default.contents(atPath: f.source + "/" + name)!)
        }
        return out
    }

    func restoredTree(_ target: String) throws -> [String: [UInt8]] {
        let dir = target + f.source
        var out: [String: [UInt8]] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: dir) {
            out[name] = [UInt8](FileManager.default.contents(atPath: dir + "/" + name)!)
        }
        return out
    }
}

@Suite(.serialized, .hangGuard) struct RetentionTests {
    func write(_ sim: RetentionSimulation, _ name: String, _ bytes: [UInt8]) throws {
        try Data(bytes).write(to: URL(fileURLWithPath: sim.f.source + "/" + name))
    }

    /// Chunks whose only pack no snapshot needed within the horizon are
    /// stored again, and a clock that went backwards reuses only what the
    /// last run needed.
    @Test func reuseHorizonRenewsPacksNoRecentSnapshotNeeded() throws {
        let sim = try RetentionSimulation(horizonDays: 14)
        try write(sim, "base", sampleBytes(200_000, seed: 1))
        try sim.snapshot(day: 0)
        let a = sampleBytes(300_000, seed: 2)
        try write(sim, "a", a)
        #expect(try sim.snapshot(day: 1)["renewed_chunks"] as? Int == 0)
        try FileManager.default.removeItem(atPath: sim.f.source + "/a")
        try sim.snapshot(day: 2)
        // Back within the horizon: deduplicated against its pack.
        try write(sim, "a", a)
        let within = try sim.snapshot(day: 10)
        #expect(within["new_bytes"] as? Int ?? .max < 2000, "only trees are new: \(within)")
        #expect(within["renewed_chunks"] as? Int == 0)
        try FileManager.default.removeItem(atPath: sim.f.source + "/a")
        try sim.snapshot(day: 11)
        // Back after the horizon: stored again in a new pack.
        try write(sim, "a", a)
        let after = try sim.snapshot(day: 30)
        #expect((after["renewed_chunks"] as? Int ?? 0) > 0, "\(after)")
        #expect((after["new_bytes"] as? Int ?? 0) >= 300_000)
        let since = (after["reuse_since"] as? String).flatMap(parseRFC3339)?.timeIntervalSince1970 ?? 0
        #expect(abs(since - (sim.time(30) - 14 * 86_400)) < 5, "the horizon counts back from the simulated day: \(after)")

        // The clock goes back 20 days: a warning, and only the last run's packs are reused.
        try write(sim, "b", sampleBytes(100_000, seed: 3))
        let back = try sim.snapshot(day: 10.5)
        let warnings = back["warnings"] as? [String] ?? []
        #expect(warnings.contains { $0.contains("went backwards") }, "\(warnings)")
        #expect(back["new_chunks"] as? Int ?? -1 > 0)
        #expect(back["renewed_chunks"] as? Int == 0, "everything else was needed by the last run: \(back)")
    }

    /// Weeks of daily snapshots and weekly prunes on both mirrors: storage
    /// stays bounded, the check passes, no kept catalog names a removed
    /// pack, and kept snapshots restore as they were taken from each mirror.
    @Test func simulatedMonthsStayBoundedAndRestorable() throws {
        let days = Int(ProcessInfo.processInfo.environment["FBK_RETENTION_DAYS"] ?? "") ?? 400
        let run = try simulate(days: days, renewBelow: 0.3, verifyRestores: true)
        print("retention simulation: \(days) days, live data \(run.live) bytes, stored on mirror 0 at the end \(run.final) (\(String(format: "%.2f", Double(run.final) / Double(run.live)))x), peak \(run.peak) (\(String(format: "%.2f", Double(run.peak) / Double(run.live)))x), uploaded \(run.uploaded) bytes")
        print("retention curve (day bytes): " + run.curve.filter { $0.day % 7 == 0 || $0.day == days - 1 }.map { "\($0.day) \($0.bytes)" }.joined(separator: ", "))
        // Without pruning every day adds two new files, days × 128 KiB: bounded far below that.
        if days >= 60 { #expect(Double(run.final) < Double(run.live) * 6, "stored \(run.final) for live \(run.live)") }
    }

    /// Renewing mostly dead packs lets prune remove their dead bytes: the
    /// same days with and without it, side by side.
    @Test func renewingPartlyDeadPacksSavesSpace() throws {
        let days = Int(ProcessInfo.processInfo.environment["FBK_RENEWAL_DAYS"] ?? "") ?? 120
        let off = try simulate(days: days, renewBelow: 0, verifyRestores: false)
        let on = try simulate(days: days, renewBelow: 0.3, verifyRestores: false)
        func mean(_ r: SimulationRun) -> Double { Double(r.curve.suffix(days / 2).reduce(0) { $0 + $1.bytes }) / Double(days / 2) }
        print("partly dead packs over \(days) days (live \(off.live) bytes): without renewal mean stored \(Int(mean(off))) (final \(off.final)), uploaded \(off.uploaded); with renew_below 0.3 mean stored \(Int(mean(on))) (final \(on.final)), uploaded \(on.uploaded)")
        #expect(mean(on) < mean(off), "renewal should leave less stored")
    }

    struct SimulationRun {
        var live: Int, final: Int, peak: Int, uploaded: Int
        var curve: [(day: Int, bytes: Int)]
    }

    func simulate(days: Int, renewBelow: Double, verifyRestores: Bool) throws -> SimulationRun {
        let sim = try RetentionSimulation()
        var text = try String(contentsOfFile: sim.f.configPath, encoding: .utf8)
        text += "renew_below: \(renewBelow)\n"
        try text.write(toFile: sim.f.configPath, atomically: true, encoding: .utf8)
        let files = 16, fileSize = 64 << 10
        for i in 0..<files { try write(sim, "f\(i)", sampleBytes(fileSize, seed: UInt64(1000 + i))) }
        var taken: [String: [String: [UInt8]]] = [:]   // snapshot ID → tree
        var curve: [(day: Int, bytes: Int)] = []
        var peak = 0, uploaded = 0
        for day in 0..<days {
            // Two files get new content each day; one comes and goes every 20 days with the same content.
            var rng = SplitMix(seed: UInt64(day + 7))
            for _ in 0..<2 {
                let i = Int(rng.next() % UInt64(files))
                try write(sim, "f\(i)", sampleBytes(fileSize, seed: rng.next()))
            }
            let toggle = sim.f.source + "/toggle"
            if (day / 20) % 2 == 0 { try write(sim, "toggle", sampleBytes(80_000, seed: 99)) } else { try? FileManager.default.removeItem(atPath: toggle) }
            let s = try sim.snapshot(day: Double(day))
            guard let id = s["snapshot"] as? String else { Issue.record("day \(day): no snapshot: \(s)"); break }
            uploaded += ((s["mirrors"] as? [[String: Any]])?.first?["uploaded_bytes"] as? Int) ?? 0
            if verifyRestores { taken[id] = try sim.tree() }
            for m in 0..<2 {
                if day % 7 == 6 {
                    let p = try sim.prune(m, day: Double(day))
                    #expect(p.status == 0, "day \(day) mirror \(m): \(p.text)")
                }
                // Every day, on each mirror: complete, signed, fresh (no kept catalog names a removed pack).
                if verifyRestores {
                    let c = try sim.check(m, day: Double(day))
                    #expect(c.status == 0, "day \(day) mirror \(m): \(c.text)")
                }
            }
            let bytes = sim.storedBytes(0)
            peak = max(peak, bytes)
            curve.append((day, bytes))
        }
        if verifyRestores {
            // Every snapshot kept on each mirror restores exactly as it was taken.
            for m in 0..<2 {
                let present = sim.f.objects(m).filter { $0.hasSuffix(".catalog") }.map { String($0.dropFirst("snapshots/".count).dropLast(".catalog".count)) }.sorted()
                #expect(present.count < days, "prune removed old snapshots")
                for id in present {
                    let target = sim.f.dir.file("restore-\(m)-\(id)")
                    let r = try sim.restore(id, from: m, to: target)
                    #expect(r.status == 0, "\(id) from mirror \(m): \(r.text)")
                    #expect(try sim.restoredTree(target) == taken[id], "\(id) from mirror \(m)")
                }
            }
        }
        return SimulationRun(live: files * fileSize + 80_000, final: curve.last?.bytes ?? 0, peak: peak, uploaded: uploaded, curve: curve)
    }

    /// A catalog that arrives after prune trashed a pack it needs gets the
    /// pack back; mirror-sync never brings back what prune removed.
    @Test func lateCatalogGetsItsPackBackAndMirrorSyncDoesNotUndoPrune() throws {
        let sim = try RetentionSimulation(policy: "keep_within: 20d\n      keep_last: 1")
        let a = sampleBytes(300_000, seed: 5)
        try write(sim, "a", a)
        try sim.snapshot(day: 0)
        try FileManager.default.removeItem(atPath: sim.f.source + "/a")
        try write(sim, "b", sampleBytes(100_000, seed: 6))
        try sim.snapshot(day: 1)
        try write(sim, "a", a)
        let late = try sim.snapshot(day: 2)
        let lateID = late["snapshot"] as! String
        // Its catalog has not reached mirror 0 yet (a spool delay).
        let catalog = sim.f.path(0, "snapshots/\(lateID).catalog")
        let aside = sim.f.dir.file("late.catalog")
        try FileManager.default.moveItem(atPath: catalog, toPath: aside)
        let packsBefore = sim.f.objects(0).filter { $0.hasPrefix("packs/") }
        let p = try sim.prune(0, day: 30, ["--force"])   // the hidden snapshot's record looks half-uploaded to the check
        #expect(p.status == 0, "\(p.text)")
        let removed = packsBefore.subtracting(sim.f.objects(0).filter { $0.hasPrefix("packs/") })
        #expect(!removed.isEmpty, "the first snapshot's pack went to the trash: \(p.text)")
        #expect(FileManager.default.fileExists(atPath: sim.f.mirrors[0].storageRoot + "/.fbk-trash/c1"))

        // mirror-sync from the unpruned mirror does not bring it back.
        let sync = try CLI.run(["mirror-sync", sim.f.mirrors[1].storageRoot, sim.f.mirrors[0].storageRoot, "--client", "c1"])
        #expect(sync.status == 0, "\(sync.stderr)")
        #expect(removed.isDisjoint(with: sim.f.objects(0)), "mirror-sync brought back what prune removed")

        // The late catalog arrives (mirror-sync brought it from the other
        // mirror): the next prune puts the pack back, with a warning.
        #expect(FileManager.default.fileExists(atPath: catalog))
        _ = aside
        let again = try sim.prune(0, day: 31)
        #expect(again.status == 0, "\(again.text)")
        #expect(again.text.contains("put back from the trash"), "\(again.text)")
        let c = try sim.check(0, day: 31)
        #expect(!c.text.contains("incomplete"), "\(c.text)")
        let target = sim.f.dir.file("restored-late")
        let r = try sim.restore(lateID, from: 0, to: target)
        #expect(r.status == 0, "\(r.text)")
        #expect(try sim.restoredTree(target)["a"] == a)
    }

    /// A compromised client signs catalogs with any `created` it likes:
    /// prune keeps by the server's receipt time, so a snapshot received
    /// within keep_within stays whatever it claims.
    @Test func forgedCreatedDatesDoNotPushSnapshotsOut() throws {
        let sim = try RetentionSimulation(policy: "keep_within: 20d\n      keep_last: 1")
        try write(sim, "a", sampleBytes(100_000, seed: 8))
        let first = try sim.snapshot(day: 0)["snapshot"] as! String
        try write(sim, "b", sampleBytes(100_000, seed: 9))
        let second = try sim.snapshot(day: 10)["snapshot"] as! String
        // Re-signed with the client's own key, dated 30 years ago.
        let path = sim.f.path(0, "snapshots/\(first).catalog")
        let bytes = [UInt8](FileManager.default.contents(atPath: path)!)
        var (catalog, _) = try SignedDocument.decode(Catalog.self, from: bytes, name: path, verifyingKey: nil)
        catalog.created = "1996-01-01T00:00:00.000Z"
        let forged = SignedDocument.encode(catalog, key: sim.f.keys.signingKey())
        var st = stat()
        lstat(path, &st)
        try Data(forged).write(to: URL(fileURLWithPath: path))
        var times = [st.st_mtim, st.st_mtim]
        utimensat(AT_FDCWD, path, &times, 0)
        let p = try sim.prune(0, day: 12, ["--force"])
        #expect(p.status == 0, "\(p.text)")
        let kept = ((p.plan["clients"] as? [[String: Any]])?.first?["kept"] as? [String: String]) ?? [:]
        #expect(kept[first] == "within", "\(p.text)")
        #expect(kept[second] == "within")
        #expect(sim.f.objects(0).contains("snapshots/\(first).catalog"))
    }

    /// Prune refuses a client whose reuse horizon its keep_within does not
    /// cover, and one whose check fails.
    @Test func pruneRefusesWhatWouldBeUnsafe() throws {
        let sim = try RetentionSimulation(horizonDays: 30)
        try write(sim, "a", sampleBytes(100_000, seed: 10))
        try sim.snapshot(day: 0)
        let p = try sim.prune(0, day: 1)
        #expect(p.status == 1)
        #expect(p.text.contains("reuse horizon is 30 days"), "\(p.text)")
        #expect(try sim.check(0, day: 1).text.contains("exceeds keep_within"))
        // A missing pack: refused, nothing moved.
        let pack = sim.f.objects(1).first { $0.hasPrefix("packs/") }!
        try FileManager.default.removeItem(atPath: sim.f.path(1, pack))
        let before = sim.f.objects(1)
        let q = try sim.prune(1, day: 1, [])
        #expect(q.status == 1)
        #expect(q.text.contains("its check reports"), "\(q.text)")
        #expect(sim.f.objects(1) == before)
    }

    /// After a second certificate is added, new snapshots reuse no pack
    /// sealed to the first alone: the latest restores with either key
    /// alone; the check flags a pack not sealed to a recipient its catalog names.
    @Test func reKeyingRenewsPacksAndEachKeyRestoresAlone() throws {
        let sim = try RetentionSimulation()
        let f = sim.f
        let base = sampleBytes(400_000, seed: 11)
        try write(sim, "base", base)
        let first = try sim.snapshot(day: 0)["snapshot"] as! String
        let keys2 = f.dir.file("keys2")
        let keygen = try CLI.run(["keygen", "--out", keys2, "--type", "rsa4096"], environment: ["FBK_PASSPHRASE": f.passphrase])
        #expect(keygen.status == 0, "\(keygen.stderr)")
        var text = try String(contentsOfFile: f.configPath, encoding: .utf8)
        text = text.replacingOccurrences(of: "recipients:\n", with: "recipients:\n  - \"\(keys2)/recipient.pem\"\n")
        try text.write(toFile: f.configPath, atomically: true, encoding: .utf8)
        let second = try sim.snapshot(day: 1)
        #expect((second["renewed_chunks"] as? Int ?? 0) > 0, "\(second)")
        let id = second["snapshot"] as! String
        for (i, key) in [f.keysDirectory + "/private.pem", keys2 + "/private.pem"].enumerated() {
            let target = f.dir.file("rekeyed-\(i)")
            let r = try sim.restore(id, from: 0, key: key, to: target)
            #expect(r.status == 0, "key \(i): \(r.text) \(f.objects(0).filter { $0.hasPrefix("keys/") })")
            #expect(try sim.restoredTree(target)["base"] == base)
        }
        #expect(try sim.check(0, day: 1).status == 0)

        // A catalog naming both certificates but listing the first snapshot's pack (sealed to one).
        let path = f.path(0, "snapshots/\(id).catalog")
        var (catalog, _) = try SignedDocument.decode(Catalog.self, from: [UInt8](FileManager.default.contents(atPath: path)!), name: path, verifyingKey: nil)
        let old = try SignedDocument.decode(Catalog.self, from: [UInt8](FileManager.default.contents(atPath: f.path(0, "snapshots/\(first).catalog"))!),
                                            name: "first", verifyingKey: nil).0
        catalog.packs = (catalog.packs + old.packs).sorted { $0.path < $1.path }
        try Data(SignedDocument.encode(catalog, key: f.keys.signingKey())).write(to: URL(fileURLWithPath: path))
        let c = try sim.check(0, day: 1)
        #expect(c.status == 2)
        #expect(c.text.contains("is not sealed to certificate"), "\(c.text)")
    }
}

extension RetentionTests {
    /// Prune killed at seeded points leaves no present catalog naming a
    /// removed object; the next run finishes the work.
    @Test func pruneKilledAtSeededPointsLeavesEverySnapshotComplete() throws {
        let sim = try RetentionSimulation(policy: "keep_within: 20d\n      keep_last: 2")
        try sim.takeDays(0..<30, size: 60_000, seed: 300) { "f\($0 % 5)" }
        let plan = try sim.prune(0, day: 45, ["--dry-run"])
        let planned = ((plan.plan["clients"] as? [[String: Any]])?.first?["removed_objects"] as? [String]) ?? []
        #expect(planned.count > 10, "\(plan.text)")
        var rng = SplitMix(seed: 42)
        for round in 0..<4 {
            let remaining = Set(planned).intersection(sim.f.objects(0)).count
            let after = Int(rng.next() % UInt64(max(1, remaining / 2)))
            let r = try CLI.run(["prune", "--config", try sim.checkConfig(), "--root", sim.f.mirrors[0].storageRoot],
                                environment: ["FBK_TEST_NOW": String(sim.time(45)), "FBK_TEST_PRUNE_KILL_AFTER": String(after)])
            #expect(r.status == 128 + SIGKILL, "round \(round): killed after \(after) moves: \(r.status) \(r.stderr)")
            let c = try sim.check(0, day: 45)
            #expect(!c.text.contains("incomplete") && !c.text.contains("missing"), "round \(round), killed after \(after) moves: \(c.text)")
        }
        let done = try sim.prune(0, day: 45)
        #expect(done.status == 0, "\(done.text)")
        // Stale (the last snapshot was day 29), and nothing else.
        let final = try sim.check(0, day: 45)
        #expect(final.text.components(separatedBy: "FAIL:").count == 2 && final.text.contains("FAIL: stale"), "\(final.text)")
        let left = Set(planned).intersection(sim.f.objects(0))
        #expect(left.isEmpty, "not removed: \(left)")
        let latest = sim.f.objects(0).filter { $0.hasSuffix(".catalog") }.sorted().last!
        let target = sim.f.dir.file("after-kills")
        let r = try sim.restore(String(latest.dropFirst(10).dropLast(8)), from: 0, to: target)
        #expect(r.status == 0, "\(r.text)")
        #expect(try sim.restoredTree(target) == sim.tree())
    }

    /// A snapshot taken while prune runs stays complete: prune removes only
    /// packs received long ago that no kept catalog lists, and the client
    /// reuses only packs a snapshot needed within its horizon.
    @Test func aSnapshotWhilePruneRuns() throws {
        let sim = try RetentionSimulation(policy: "keep_within: 20d\n      keep_last: 1")
        let keep = sampleBytes(200_000, seed: 77)
        try write(sim, "keep", keep)
        try sim.takeDays(0..<30, size: 60_000, seed: 500) { _ in "f" }
        let config = try sim.checkConfig()
        let prune = Process()
        prune.executableURL = CLI.binary
        prune.arguments = ["prune", "--config", config, "--root", sim.f.mirrors[0].storageRoot]
        var env = ProcessInfo.processInfo.environment
        env["FBK_TEST_NOW"] = String(sim.time(40))
        env["FBK_TEST_PRUNE_MOVE_DELAY_MS"] = "40"
        prune.environment = env
        prune.standardOutput = FileHandle.nullDevice
        try prune.run()
        usleep(150_000)
        try write(sim, "f", sampleBytes(60_000, seed: 999))
        let s = try sim.snapshot(day: 40)
        let during = s["snapshot"] as? String
        #expect(prune.isRunning, "the snapshot ran while prune was still moving objects")
        prune.waitUntilExit()
        #expect(prune.terminationStatus == 0)
        #expect(try sim.check(0, day: 40).status == 0)
        let target = sim.f.dir.file("during")
        let r = try sim.restore(during ?? "latest", from: 0, to: target)
        #expect(r.status == 0, "\(r.text)")
        #expect(try sim.restoredTree(target)["keep"] == keep)
    }

    /// A client clock that jumps ahead renews what it meets (nothing is
    /// reused on a guess), and one that comes back reuses only the last run's.
    @Test func aClockJumpingAheadRenewsAndComingBackStaysSafe() throws {
        let sim = try RetentionSimulation()
        try write(sim, "a", sampleBytes(300_000, seed: 12))
        try sim.snapshot(day: 0)
        try sim.snapshot(day: 1)
        let ahead = try sim.snapshot(day: 200)
        #expect((ahead["renewed_chunks"] as? Int ?? 0) > 0, "\(ahead)")
        let back = try sim.snapshot(day: 2)
        #expect((back["warnings"] as? [String] ?? []).contains { $0.contains("went backwards") })
        #expect(back["renewed_chunks"] as? Int == 0, "the last run's packs are reused: \(back)")
        // Complete; the renewal's upload may look like a mass rewrite to the growth alarm.
        let c = try sim.check(0, day: 200)
        #expect(c.status <= 1 && !c.text.contains("incomplete"), "\(c.text)")
    }

    /// One mirror down for days: its objects wait in the client's spool,
    /// the other mirror is pruned meanwhile; each is pruned on its own and
    /// both check clean once the spool is delivered.
    @Test func oneMirrorBehind() throws {
        let sim = try RetentionSimulation(policy: "keep_within: 20d\n      keep_last: 2")
        for day in 0..<25 {
            try write(sim, "f\(day % 3)", sampleBytes(50_000, seed: UInt64(day + 700)))
            if day == 20 { sim.f.mirrors[1].stop() }
            let s = try sim.snapshotAllowingBehind(day: Double(day))
            if day >= 20 { #expect(s["exit_status"] as? Int == 4, "\(s)") }
            if day == 21 {
                let p = try sim.prune(0, day: 21)
                #expect(p.status == 0, "\(p.text)")
            }
        }
        try sim.f.mirrors[1].start()
        try sim.snapshot(day: 25)
        for m in 0..<2 {
            let p = try sim.prune(m, day: 26)
            #expect(p.status == 0, "mirror \(m): \(p.text)")
            let c = try sim.check(m, day: 26)
            #expect(c.status == 0, "mirror \(m): \(c.text)")
        }
    }
}

extension RetentionTests {
    /// A device's blob sets follow the same policy by receipt time, whole
    /// sets at a time; an incremental keeps the full it applies to and the
    /// incrementals between.
    @Test func deviceBlobsArePrunedBySetsAndIncrementalsKeepTheirChain() throws {
        let dir = try TemporaryDirectory()
        let root = dir.file("root")
        let origin = (Date().timeIntervalSince1970 / 86_400).rounded(.down) * 86_400 - 400 * 86_400
        func put(_ kind: String, day: Int, parts: Int = 0) throws -> [String] {
            let t = origin + Double(day) * 86_400 + 3600
            let stamp = Timestamp.compactTime(Date(timeIntervalSince1970: t))
            let name = "blobs/\(kind)-\(stamp)-\(String(format: "%016x", day * 31 + kind.count))"
            var paths: [String] = []
            if parts == 0 {
                paths.append(name + ".cms")
                _ = try dir.write("root/fw/" + paths[0], sampleBytes(2000, seed: UInt64(day)))
            } else {
                var manifest = "fbk-blob-manifest 1\n"
                for n in 1...parts {
                    let path = name + String(format: ".part%04d.cms", n)
                    let bytes = sampleBytes(1500, seed: UInt64(day * 10 + n))
                    _ = try dir.write("root/fw/" + path, bytes)
                    manifest += "part \(n) \(bytes.count) \(SHA256.hash(bytes).hex)\n"
                    paths.append(path)
                }
                manifest += "parts \(parts)\n"
                paths.append(name + ".manifest")
                _ = try dir.write("root/fw/" + paths.last!, Array(manifest.utf8))
            }
            for path in paths {
                var times = [timespec(tv_sec: Int(t), tv_nsec: 0), timespec(tv_sec: Int(t), tv_nsec: 0)]
                utimensat(AT_FDCWD, root + "/fw/" + path, &times, 0)
            }
            return paths
        }
        var byDay: [String: [String]] = [:]
        for day in 0..<45 {
            byDay["conf \(day)"] = try put("conf", day: day)
            byDay["zfs \(day)"] = try put(day % 31 == 0 ? "zfs-full" : "zfs-incr", day: day, parts: 2)
        }
        // An interrupted upload long ago: parts, no manifest.
        let interrupted = try put("zfs-incr", day: 3, parts: 1).filter { !$0.hasSuffix(".manifest") }
        try FileManager.default.removeItem(atPath: root + "/fw/" + (try put("zfs-incr", day: 3, parts: 1)).last!)
        let conf = try dir.write("check.conf", Array("""
            clients:
              - name: fw
                kind: device
                max_age: 48h
                blobs:
                  - kind: conf
                  - kind: zfs-full
                    max_age: 40d
                  - kind: zfs-incr
                retention:
                  keep_within: 10d
                  keep_last: 1
                  keep_weekly: 2
            """.utf8))
        let now = String(origin + 44 * 86_400 + 7200)
        let r = try CLI.run(["prune", "--config", conf, "--root", root, "--json"], environment: ["FBK_TEST_NOW": now])
        #expect(r.status == 0, "\(r.stdout) \(r.stderr)")
        func present(_ paths: [String]) -> Bool { paths.allSatisfy { FileManager.default.fileExists(atPath: root + "/fw/" + $0) } }
        func gone(_ paths: [String]) -> Bool { paths.allSatisfy { !FileManager.default.fileExists(atPath: root + "/fw/" + $0) } }
        for day in 35..<45 { #expect(present(byDay["conf \(day)"]!), "conf \(day)") }
        #expect(gone(byDay["conf 0"]!) && gone(byDay["conf 20"]!))
        // The newest incrementals keep their chain: the full of day 31 and every incremental after it.
        for day in 31..<45 { #expect(present(byDay["zfs \(day)"]!), "zfs \(day)") }
        // The older incrementals go; the day-0 full is the newest full of its week (keep_weekly counts per kind).
        #expect(gone(byDay["zfs 1"]!) && gone(byDay["zfs 15"]!) && gone(byDay["zfs 30"]!), "the older incrementals go")
        #expect(present(byDay["zfs 0"]!))
        #expect(gone(interrupted))
        let check = try CLI.run(["check", "--config", conf, "--root", root], environment: ["FBK_TEST_NOW": now])
        #expect(check.status == 0, "\(check.stdout)")
    }
}

extension RetentionTests {
    /// Prune keeps a removed snapshot's listing while a pack it maps
    /// survives; an index rebuilt afterwards finds those chunks through it,
    /// so the next snapshot uploads nothing again, and restores read it.
    @Test func aRetiredListingStillMapsItsSurvivingPacks() throws {
        let sim = try RetentionSimulation(policy: "keep_within: 20d\n      keep_last: 1")
        let keep = sampleBytes(400_000, seed: 31)
        try write(sim, "keep", keep)
        let first = try sim.snapshot(day: 0)["snapshot"] as! String
        try sim.takeDays(1..<30, size: 30_000, seed: 900) { _ in "f" }
        for m in 0..<2 {
            let p = try sim.prune(m, day: 30)
            #expect(p.status == 0, "\(p.text)")
        }
        let root = sim.f.mirrors[0].storageRoot
        #expect(!sim.f.objects(0).contains("snapshots/\(first).catalog"), "the first snapshot was removed")
        #expect(sim.f.objects(0).contains("snapshots/\(first).listing"), "its listing stays: it maps the pack holding keep")
        #expect(FileManager.default.fileExists(atPath: root + "/.fbk-trash/c1/retired/snapshots/\(first).catalog"))
        #expect(try sim.check(0, day: 30).status == 0)

        let out = sim.f.dir.file("rebuilt.sqlite")
        let rebuild = try CLI.run(["index", "rebuild", "--client", "c1", "--secret", sim.f.dir.file("etc/secret"),
                                   "--from", sim.f.mirrors[0].storageRoot, "--mirror-url", sim.f.mirrors[0].url("c1"),
                                   "--from", sim.f.mirrors[1].storageRoot, "--mirror-url", sim.f.mirrors[1].url("c1"),
                                   "--out", out, "--json"], environment: ["FBK_TEST_NOW": String(sim.time(30))])
        #expect(rebuild.status == 0, "\(rebuild.stderr)")
        let state = sim.f.dir.file("state/index.sqlite")
        try FileManager.default.removeItem(atPath: state)
        try? FileManager.default.removeItem(atPath: state + "-wal")
        try? FileManager.default.removeItem(atPath: state + "-shm")
        try FileManager.default.copyItem(atPath: out, toPath: state)
        let after = try sim.snapshot(day: 30)
        #expect((after["new_bytes"] as? Int ?? .max) < 50_000, "keep's chunks were found through the retired listing: \(after)")

        let target = sim.f.dir.file("retired-restore")
        let r = try sim.restore(after["snapshot"] as! String, from: 0, to: target)
        #expect(r.status == 0, "\(r.text)")
        #expect(try sim.restoredTree(target)["keep"] == keep)
    }
}

extension RetentionTests {
    /// Prune through a WebDAV account of deploy/nginx/fbk-prune.conf does
    /// what prune on the storage root does: the same objects stay, the
    /// same go to the trash, and a second run purges the same.
    @Test func pruneThroughWebDAVMatchesPruneOnTheStorageRoot() throws {
        let sim = try RetentionSimulation(policy: "keep_within: 20d\n      keep_last: 2\n      keep_weekly: 1")
        let keep = sampleBytes(200_000, seed: 41)
        try write(sim, "keep", keep)
        try sim.takeDays(0..<35, size: 40_000, seed: 1100) { "f\($0 % 4)" }
        let password = try sim.f.dir.write("prune-password", Array("operator-pw\n".utf8))
        func viaWebDAV(_ day: Double, _ extra: [String] = []) throws -> (status: Int32, text: String, plan: [String: Any]) {
            let r = try CLI.run(["prune", "--config", try sim.checkConfig(), "--url", sim.f.mirrors[0].pruneURL,
                                 "--user", "operator", "--password-file", password, "--json"] + extra,
                                environment: ["FBK_TEST_NOW": String(sim.time(day) + 7200)])
            let json = (try? JSONSerialization.jsonObject(with: r.stdoutBytes)) as? [String: Any] ?? [:]
            return (r.status, r.stdout + r.stderr, ((json["clients"] as? [[String: Any]])?.first) ?? [:])
        }
        let planned = try viaWebDAV(35, ["--dry-run"])
        let direct = try sim.prune(1, day: 35, ["--dry-run"])
        let directPlan = ((direct.plan["clients"] as? [[String: Any]])?.first) ?? [:]
        #expect(planned.status == 0, "\(planned.text)")
        #expect((planned.plan["removed_objects"] as? [String]) == (directPlan["removed_objects"] as? [String]))
        #expect((planned.plan["removed_objects"] as? [String])?.isEmpty == false)

        let web = try viaWebDAV(35)
        #expect(web.status == 0, "\(web.text)")
        #expect(try sim.prune(1, day: 35).status == 0)
        #expect(sim.f.objects(0) == sim.f.objects(1), "the same objects stay")
        let trash0 = try FileManager.default.subpathsOfDirectory(atPath: sim.f.mirrors[0].storageRoot + "/.fbk-trash/c1").filter { !$0.hasPrefix("pruned") }.sorted()
        let trash1 = try FileManager.default.subpathsOfDirectory(atPath: sim.f.mirrors[1].storageRoot + "/.fbk-trash/c1").filter { !$0.hasPrefix("pruned") }.sorted()
        #expect(trash0 == trash1, "the same go to the trash")
        for m in 0..<2 { #expect(try sim.check(m, day: 35).status == 0) }

        // Past the grace period (10 days), the trash run is purged through WebDAV too.
        let trashDir = sim.f.mirrors[0].storageRoot + "/.fbk-trash/c1"
        let firstRuns = try FileManager.default.contentsOfDirectory(atPath: trashDir).filter { $0.hasPrefix("20") }
        #expect(firstRuns.count == 1)
        let later = try viaWebDAV(47)
        #expect(later.status == 0, "\(later.text)")
        #expect((later.plan["purged_objects"] as? Int ?? 0) > 0, "\(later.text)")
        let runs = try FileManager.default.contentsOfDirectory(atPath: trashDir)
        #expect(Set(runs).isDisjoint(with: firstRuns), "\(runs)")
        let target = sim.f.dir.file("webdav-pruned")
        let latest = sim.f.objects(0).filter { $0.hasSuffix(".catalog") }.sorted().last!
        let r = try sim.restore(String(latest.dropFirst(10).dropLast(8)), from: 0, to: target)
        #expect(r.status == 0, "\(r.text)")
        #expect(try sim.restoredTree(target)["keep"] == keep)
    }
}

/// A small deterministic generator for the simulation's choices.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}
