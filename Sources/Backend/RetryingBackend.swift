// Retries as a wrapper, not inside each backend: a transient failure (down,
// 5xx, a reset, a timeout) is tried again after growing delays; a
// permanent one, a missing object, and a server that stayed silent for the
// whole stall timeout are not (each retry of those would cost the timeout
// again, or cannot help).

import FoundationEssentials
import Glibc
import Format
import Platform

package struct RetryingBackend: Backend {
    public let base: any Backend
    /// Delays before the 2nd, 3rd … attempt.
    public let delays: [Double]

    public init(_ base: any Backend, delays: [Double]) {
        self.base = base
        self.delays = delays
    }

    public var location: String { base.location }

    private func retrying<T>(_ body: () throws(BackendError) -> T) throws(BackendError) -> T {
        var attempt = 0
        while true {
            do {
                return try body()
            } catch {
                if error.kind != .transient || error.silent || attempt >= delays.count { throw error }
                Threads.sleep(seconds: delays[attempt])
                attempt += 1
            }
        }
    }

    public func put(_ path: String, from localFile: String, size: Int) throws(BackendError) -> PutOutcome {
        try retrying { () throws(BackendError) in try base.put(path, from: localFile, size: size) }
    }

    public func fetch(_ path: String, limit: Int) throws(BackendError) -> FetchedObject {
        try retrying { () throws(BackendError) in try base.fetch(path, limit: limit) }
    }

    public func fetch(_ path: String, range: Range<Int>) throws(BackendError) -> [UInt8] {
        try retrying { () throws(BackendError) in try base.fetch(path, range: range) }
    }

    public func stat(_ path: String) throws(BackendError) -> StoredObject {
        try retrying { () throws(BackendError) in try base.stat(path) }
    }

    public func list(_ kind: ObjectKind) throws(BackendError) -> [StoredObject] {
        try retrying { () throws(BackendError) in try base.list(kind) }
    }

    /// Asked once: a mirror that does not answer is not kept waiting on.
    public func serverTime() throws(BackendError) -> Date? { try base.serverTime() }
    public func assumeDirectories(_ known: Set<String>) { base.assumeDirectories(known) }
    public func newlyKnownDirectories() -> Set<String> { base.newlyKnownDirectories() }

    public func inventory() throws(BackendError) -> Inventory {
        try retrying { () throws(BackendError) in try base.inventory() }
    }
}
