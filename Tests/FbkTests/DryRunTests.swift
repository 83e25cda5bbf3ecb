import Foundation
import Seal
import Testing
import TestSupport

/// `fbk snapshot --dry-run`: walks and chunks, uploads nothing, changes
/// neither the index nor the spool, and says what would be new.
@Suite(.hangGuard) struct DryRunTests {
    func digest(_ path: String) -> String? {
        (try? SHA256.hash(fileAt: path))?.digest.hex
    }

    func spool(_ f: SnapshotFixture) -> [String] {
        (FileManager.default.enumerator(atPath: f.dir.file("state/spool"))?.allObjects as? [String] ?? []).sorted()
    }

    @Test func aDryRunSaysWhatWouldBeNewAndChangesNothing() throws {
        let f = try SnapshotFixture()
        try f.dir.write("src/old", sampleBytes(100_000, seed: 1))
        #expect(try f.snapshot().status == 0)
        // One mirror down: the next run spools what it misses.
        f.mirrors[1].stop()
        try f.dir.write("src/spooled", sampleBytes(80_000, seed: 2))
        #expect(try f.snapshot().status == 4)
        let spooled = spool(f)
        #expect(!spooled.isEmpty)

        sleep(2)
        try f.dir.write("src/new", sampleBytes(300_000, seed: 3))
        try f.dir.write("src/text", Array(String(repeating: "the same line again\n", count: 20_000).utf8))
        let objects = [f.objects(0), f.objects(1)]
        let index = [digest(f.dir.file("state/index.sqlite")), digest(f.dir.file("state/index.sqlite-wal"))]
        try f.mirrors[1].start()
        let dry = try CLI.run(["snapshot", "--config", f.configPath, "--dry-run", "--json"])
        #expect(dry.status == 0, "\(dry.stderr)")
        let summary = (try? JSONSerialization.jsonObject(with: dry.stdoutBytes)) as? [String: Any] ?? [:]
        #expect(summary["dry_run"] as? Bool == true, "\(summary)")
        let newBytes = summary["new_bytes"] as? Int ?? 0
        #expect(newBytes >= 700_000, "the two new files: \(summary)")
        #expect((summary["stored_bytes"] as? Int ?? .max) < 400_000, "the text compresses: \(summary)")
        #expect([f.objects(0), f.objects(1)] == objects, "nothing uploaded, not even what the second mirror misses")
        #expect([digest(f.dir.file("state/index.sqlite")), digest(f.dir.file("state/index.sqlite-wal"))] == index, "the index is as it was")
        #expect(spool(f) == spooled, "the spool is as it was")

        // The real run stores what the dry run said, and delivers the spool.
        let real = try f.snapshot()
        #expect(real.status == 0, "\(real.stderr)")
        #expect(real.summary["new_bytes"] as? Int == newBytes)
        #expect((real.summary["spool_delivered"] as? Int ?? 0) > 0, "\(real.summary)")
    }
}
