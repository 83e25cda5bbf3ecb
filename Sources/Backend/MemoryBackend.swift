// A backend in memory, for tests and benchmarks: the same contract as the
// others (the conformance suite proves it), with failures that can be
// switched on to see what callers do with them.

import FoundationEssentials
import Glibc
import Format
import Platform

package final class MemoryBackend: Backend, @unchecked Sendable {
    public let location: String
    private let lock = Lock()
    private var objects: [String: (bytes: [UInt8], received: Date)] = [:]
    private let scratch: PrivateDirectory
    /// When set, every operation fails with it (a server that is down, or refuses).
    public var failure: BackendError.Kind? {
        get { lock.withLock { _failure } }
        set { lock.withLock { _failure = newValue } }
    }
    private var _failure: BackendError.Kind?

    public init(location: String = "memory:") throws(StoreError) {
        self.location = location
        scratch = try PrivateDirectory(prefix: "fbk-memory")
    }

    deinit { scratch.remove() }

    /// Stores an object as a server would, whatever its name (a test's forgery).
    package func plant(_ path: String, _ bytes: [UInt8], received: Date = Date()) {
        lock.withLock { objects[path] = (bytes, received) }
    }

    /// The stored bytes, or nil.
    package func contents(_ path: String) -> [UInt8]? { lock.withLock { objects[path]?.bytes } }

    private func check(_ path: String) throws(BackendError) {
        if let kind = failure { throw BackendError(kind, location: location, "the memory backend is set to fail (\(kind.rawValue))") }
        guard isContainedPath(path) else { throw BackendError(.permanent, location: location, "\(path) is not a path under the client's directory") }
    }

    private func object(_ path: String) throws(BackendError) -> (bytes: [UInt8], received: Date) {
        try check(path)
        guard let o = lock.withLock({ objects[path] }) else { throw BackendError(.notFound, location: location, "\(path) is not there") }
        return o
    }

    public func put(_ path: String, from localFile: String, size: Int) throws(BackendError) -> PutOutcome {
        try check(path)
        guard let data = FileManager.default.contents(atPath: localFile), data.count == size else {
            throw BackendError(.permanent, location: location, "cannot read \(localFile) (\(size) bytes)")
        }
        return lock.withLock {
            if objects[path] != nil { return .alreadyPresent }
            objects[path] = ([UInt8](data), Date())
            return .stored
        }
    }

    public func fetch(_ path: String, limit: Int) throws(BackendError) -> FetchedObject {
        let o = try object(path)
        guard o.bytes.count <= limit else {
            throw BackendError(.permanent, location: location, "\(path) is \(o.bytes.count) bytes, more than the \(limit) any such object may have")
        }
        let file = scratch.path + "/" + UUID().uuidString
        guard FileManager.default.createFile(atPath: file, contents: Data(o.bytes), attributes: [.posixPermissions: 0o600]) else {
            throw BackendError(.transient, location: location, "cannot write \(file)")
        }
        return FetchedObject(path: file, size: o.bytes.count, temporary: true)
    }

    public func fetch(_ path: String, range: Range<Int>) throws(BackendError) -> [UInt8] {
        let bytes = try object(path).bytes
        let end = min(range.upperBound, bytes.count)
        return range.lowerBound < end ? Array(bytes[range.lowerBound..<end]) : []
    }

    public func stat(_ path: String) throws(BackendError) -> StoredObject {
        let o = try object(path)
        return StoredObject(path: path, size: o.bytes.count, received: o.received,
                            receivedNanoseconds: Int64(o.received.timeIntervalSince1970 * 1e9))
    }

    public func list(_ kind: ObjectKind) throws(BackendError) -> [StoredObject] {
        try inventory().objects.filter { ObjectName(parsing: $0.path)?.kind == kind }
    }

    public func inventory() throws(BackendError) -> Inventory {
        if let kind = failure { throw BackendError(kind, location: location, "the memory backend is set to fail (\(kind.rawValue))") }
        let all = lock.withLock { objects }
        return Inventory(objects: all.map {
            StoredObject(path: $0.key, size: $0.value.bytes.count, received: $0.value.received,
                         receivedNanoseconds: Int64($0.value.received.timeIntervalSince1970 * 1e9))
        }.sorted { $0.path < $1.path })
    }
}
