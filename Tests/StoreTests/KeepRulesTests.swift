import Config
import Foundation
import Format
import Pruner
import Testing

/// Which snapshots a retention policy keeps, by receipt time alone.
@Suite struct KeepRulesTests {
    let now = Date(timeIntervalSince1970: 1_800_000_000)

    /// One snapshot a day at 03:00 UTC for `days` days, newest last.
    func daily(_ days: Int) -> [Received<SnapshotID>] {
        (0..<days).map { d in
            let t = now.addingTimeInterval(-Double(days - 1 - d) * 86_400 - 3600)
            let id = SnapshotID("\(Timestamp.compactTime(t))-\(String(format: "%016x", d))")!
            return Received(id: id, received: t)
        }
    }

    @Test func withinLastAndBucketsKeepWhatTheySay() {
        var p = RetentionPolicy(keepWithin: 10 * 86_400)
        p.keepLast = 3
        p.keepWeekly = 4
        p.keepMonthly = 3
        let kept = KeepRules.kept(daily(200), policy: p, now: now)
        #expect(kept.values.filter { $0 == "within" }.count == 10)
        // 4 newest ISO weeks: the first two are within already; 3 months likewise.
        #expect(kept.count >= 10 + 2 && kept.count <= 10 + 4 + 3, "\(kept.count)")
        let newestFirst = daily(200).reversed().map(\.id)
        #expect(newestFirst.prefix(10).allSatisfy { kept[$0] != nil })
        #expect(kept[newestFirst.last!] == nil, "the oldest is not kept")
    }

    /// keep_last keeps the newest even when nothing was received within keep_within.
    @Test func keepLastHoldsWhenTheClientStopped() {
        var p = RetentionPolicy(keepWithin: 86_400)
        p.keepLast = 2
        let old = daily(30).map { Received(id: $0.id, received: $0.received.addingTimeInterval(-90 * 86_400)) }
        let kept = KeepRules.kept(old, policy: p, now: now)
        #expect(kept.count == 2)
        #expect(Set(kept.keys) == Set(old.suffix(2).map(\.id)))
    }

    @Test func receiptTimesDecideNotIDs() {
        // An ID that claims 1990, received yesterday: kept as within.
        let forged = Received(id: SnapshotID(String("19900101T000000Z-00000000000000aa"))!, received: now.addingTimeInterval(-86_400))
        let kept = KeepRules.kept([forged], policy: RetentionPolicy(keepWithin: 3 * 86_400), now: now)
        #expect(kept[forged.id] == "within")
    }

    @Test func theHorizonMustFitKeepWithin() {
        var p = RetentionPolicy(keepWithin: 17 * 86_400)
        p.spoolDelay = 3 * 86_400
        #expect(p.protects(horizon: 14 * 86_400))
        #expect(!p.protects(horizon: 15 * 86_400))
    }
}
