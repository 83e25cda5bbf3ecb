// Durations as the seconds summaries and progress lines print.

extension Duration {
    /// The duration in seconds, with its fraction.
    package var seconds: Double {
        let (s, a) = components
        return Double(s) + Double(a) / 1e18
    }
}

import FoundationEssentials
import Glibc

/// The wall clock fbk's time-dependent decisions read (the reuse horizon,
/// prune). `FBK_TEST_NOW` (Unix seconds) sets it, so tests simulate days
/// without sleeping; it cannot stretch the reuse horizon (the client never
/// takes a time before its last run's, nor before a mirror's clock).
public enum WallClock {
    public static func now() -> Date { Date().addingTimeInterval(testOffset) }

    /// How far FBK_TEST_NOW moves every clock fbk reads, its own and the
    /// servers' (0 outside tests): a simulated day is the same day everywhere.
    public static let testOffset: TimeInterval = {
        guard let text = ProcessInfo.processInfo.environment["FBK_TEST_NOW"], let seconds = Double(text) else { return 0 }
        return seconds - Date().timeIntervalSince1970
    }()
}
