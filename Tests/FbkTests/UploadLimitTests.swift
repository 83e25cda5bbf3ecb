import Foundation
import Testing
import TestSupport

/// `upload_limit`: one rate for all of a run's uploads, every mirror
/// together. Only a lower bound on the time is asserted: a slow machine
/// can make a run longer, never shorter, so the test cannot flake.
@Suite(.hangGuard) struct UploadLimitTests {
    @Test func uploadsToEveryMirrorTogetherKeepToTheLimit() throws {
        let f = try SnapshotFixture()
        try f.dir.write("src/data", sampleBytes(600_000, seed: 5))
        let limit = 256 << 10
        try f.configure("upload_limit: 256KiB")
        let started = Date()
        let r = try f.snapshot()
        let elapsed = Date().timeIntervalSince(started)
        #expect(r.status == 0, "\(r.stderr)")
        let uploaded = (r.summary["mirrors"] as? [[String: Any]] ?? []).reduce(0) { $0 + ($1["uploaded_bytes"] as? Int ?? 0) }
        #expect(uploaded > 1_200_000, "both mirrors got the data: \(uploaded)")
        // The bucket starts full (one second's worth); the rest goes at the limit.
        let least = Double(uploaded - limit) / Double(limit)
        #expect(elapsed >= least * 0.95, "\(uploaded) bytes in \(elapsed) s: at most \(limit) bytes/s after the first second")
    }

    @Test func aLimitTooSmallToBeMeantIsRefused() throws {
        let f = try SnapshotFixture()
        try f.configure("upload_limit: 100")
        let r = try f.snapshot()
        #expect(r.status == 64 && r.stderr.contains("upload_limit"), "\(r.stderr)")
    }
}
