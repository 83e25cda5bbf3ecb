// `upload_limit`: the bytes per second all of a run's uploads share, every
// mirror together, so a daily run does not fill a home uplink. A token
// bucket holding at most one second's worth: an upload that takes more
// than there is waits (inside libcurl's read callback) until there is.

import FoundationEssentials
import Glibc
import Platform

public final class UploadLimiter: @unchecked Sendable {
    public let bytesPerSecond: Int
    private var tokens: Double
    private var last = ContinuousClock.now
    private let lock = Lock()

    public init(bytesPerSecond: Int) {
        precondition(bytesPerSecond > 0)
        self.bytesPerSecond = bytesPerSecond
        tokens = Double(bytesPerSecond)
    }

    /// Takes `count` bytes' worth, waiting as long as the rate requires.
    public func take(_ count: Int) {
        let wait: Double = lock.withLock {
            let now = ContinuousClock.now
            let elapsed = now - last
            last = now
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            tokens = min(Double(bytesPerSecond), tokens + seconds * Double(bytesPerSecond)) - Double(count)
            return tokens < 0 ? -tokens / Double(bytesPerSecond) : 0
        }
        if wait > 0 { usleep(UInt32(min(wait, 60) * 1_000_000)) }
    }
}
