// Which snapshots a retention policy keeps (FORMAT.md, "Retention"),
// judged by the server's receipt times alone: a client's `created` claim
// never moves a snapshot in or out, so a client that forges dates cannot
// push good snapshots out of the policy.

import Config
import FoundationEssentials
import Glibc
import Format

/// One snapshot (or device blob set) as prune sees it: what names it, and
/// when this server received it.
package struct Received<ID: Hashable & Comparable & Sendable>: Sendable {
    package let id: ID
    package let received: Date
    package init(id: ID, received: Date) { (self.id, self.received) = (id, received) }
}

package enum KeepRules {
    /// The snapshots `policy` keeps at `now`, and for each why (for the plan).
    /// - Every snapshot received within `keepWithin`;
    /// - the newest `keepLast`;
    /// - the newest of each of the newest `keepDaily` UTC days (weeks,
    ///   months, years) that have a snapshot.
    package static func kept<ID>(_ snapshots: [Received<ID>], policy: RetentionPolicy, now: Date) -> [ID: String] {
        let newestFirst = snapshots.sorted { ($0.received, $0.id) > ($1.received, $1.id) }
        var kept: [ID: String] = [:]
        for s in newestFirst where now.timeIntervalSince(s.received) <= policy.keepWithin {
            kept[s.id] = "within"
        }
        for s in newestFirst.prefix(policy.keepLast) where kept[s.id] == nil { kept[s.id] = "last" }
        var calendar = Calendar(identifier: .iso8601)
        calendar.timeZone = TimeZone(secondsFromGMT: 0)!
        let buckets: [(count: Int, name: String, key: (Date) -> String)] = [
            (policy.keepDaily, "daily", { d in let c = calendar.dateComponents([.year, .month, .day], from: d); return "\(c.year!)-\(c.month!)-\(c.day!)" }),
            (policy.keepWeekly, "weekly", { d in let c = calendar.dateComponents([.yearForWeekOfYear, .weekOfYear], from: d); return "\(c.yearForWeekOfYear!)-W\(c.weekOfYear!)" }),
            (policy.keepMonthly, "monthly", { d in let c = calendar.dateComponents([.year, .month], from: d); return "\(c.year!)-\(c.month!)" }),
            (policy.keepYearly, "yearly", { d in "\(calendar.component(.year, from: d))" }),
        ]
        for bucket in buckets where bucket.count > 0 {
            var seen = Set<String>()
            for s in newestFirst {
                let key = bucket.key(s.received)
                guard !seen.contains(key) else { continue }
                guard seen.count < bucket.count else { break }
                seen.insert(key)
                if kept[s.id] == nil { kept[s.id] = bucket.name }
            }
        }
        return kept
    }
}
