import Foundation

/// A count that several threads add to.
public final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0
    public init() {}
    public var value: Int { lock.withLock { n } }
    public func add() { lock.withLock { n += 1 } }
}
