// Storage: where a client's objects live. One protocol for writing and
// reading them, whatever the server (a WebDAV server, a local directory,
// memory in tests). A backend is one client's directory on one server.
//
// The contract (FORMAT.md 2, "Server rules"):
// - `put` is create-only: it never overwrites, renames or deletes, and
//   repeating it is harmless (names are content hashes or unique IDs).
// - reads give back what the server holds, which may be hostile: every
//   fetch has a size limit, and names are taken only in their exact form.
// - a failure says what kind it is (`BackendError.Kind`): a network failure
//   is never reported as a missing object.
// A client only ever calls `put`; reading is for the operator's commands.

import FoundationEssentials
import Glibc
import Format
import Platform

/// The result of a successful upload.
public enum PutOutcome: Sendable, Equatable {
    /// The object was created.
    case stored
    /// An object of that name was already there. Names are content hashes
    /// (or unique snapshot IDs), so it holds the same bytes.
    case alreadyPresent
}

/// One object as a listing or `stat` gives it.
public struct StoredObject: Sendable, Equatable {
    /// Relative to the client's directory, `/`-separated.
    public var path: String
    public var size: Int
    /// When the server received it (its modification time): snapshots and
    /// freshness are judged by it, never by a time a client claims.
    public var received: Date?
    /// The same to the nanosecond where the server keeps it (0 otherwise):
    /// a changed time is a changed object to the check's state.
    public var receivedNanoseconds: Int64 = 0

    public init(path: String, size: Int, received: Date?, receivedNanoseconds: Int64 = 0) {
        self.path = path
        self.size = size
        self.received = received
        self.receivedNanoseconds = receivedNanoseconds
    }

    /// The path's object name, when it has the exact form of one.
    public var name: ObjectName? { ObjectName(parsing: path) }
}

/// Everything under a client's directory, for the check and mirror-sync.
public struct Inventory: Sendable {
    /// Every regular file.
    public var objects: [StoredObject] = []
    /// Entries that are neither a regular file nor a directory (links,
    /// FIFOs, sockets, devices): no upload makes those.
    public var others: [String] = []

    public init(objects: [StoredObject] = [], others: [String] = []) {
        self.objects = objects
        self.others = others
    }
}

/// A whole object in a local file, for reading: the file is the stored
/// one itself (a directory backend) or a private copy, deleted when this
/// is released.
public final class FetchedObject: @unchecked Sendable {
    /// The local file to read.
    public let path: String
    public let size: Int
    private let temporary: Bool

    package init(path: String, size: Int, temporary: Bool) {
        self.path = path
        self.size = size
        self.temporary = temporary
    }

    deinit { if temporary { unlink(path) } }

    /// The whole object, read with the size checked again (the file may
    /// have changed since it was fetched).
    public func bytes(what: String) throws(StoreError) -> [UInt8] { try readBounded(path, limit: size, what: what) }
}

/// One client's directory on one server.
public protocol Backend: Sendable {
    /// Where it is, for messages (the URL or path as configured).
    var location: String { get }

    /// Uploads the file at `localFile` as `path`. Create-only; safe to repeat.
    func put(_ path: String, from localFile: String, size: Int) throws(BackendError) -> PutOutcome

    /// The whole object in a local file, if it is at most `limit` bytes.
    /// - Throws: `.notFound` when absent; `.permanent` when it is larger
    ///   than `limit` or not a regular file.
    func fetch(_ path: String, limit: Int) throws(BackendError) -> FetchedObject

    /// Bytes `range` of an object; fewer only when the object ends first.
    func fetch(_ path: String, range: Range<Int>) throws(BackendError) -> [UInt8]

    /// Size and receipt time of one object. `.notFound` when absent.
    func stat(_ path: String) throws(BackendError) -> StoredObject

    /// The objects of one kind (their names checked: anything else in the
    /// kind's directory is left out), in path order.
    func list(_ kind: ObjectKind) throws(BackendError) -> [StoredObject]

    /// Every entry under the client's directory, whatever its name.
    func inventory() throws(BackendError) -> Inventory

    /// The server's clock, where it has one of its own (an HTTP server's
    /// `Date`), asked with a request that reads and changes nothing. Nil
    /// for local storage, or an answer without a date.
    /// - Throws: when the server gives no answer at all (down, silent).
    func serverTime() throws(BackendError) -> Date?

    /// Directories under the client's directory ("" is the directory
    /// itself) known to exist: a server that needs each made before a PUT
    /// into it (RFC 4918 9.7.1) is asked once, not every run. The client
    /// keeps what it learned in its index and gives it back here.
    func assumeDirectories(_ known: Set<String>)
    /// Directories learned to exist since the last call.
    func newlyKnownDirectories() -> Set<String>
}

extension Backend {
    public func serverTime() throws(BackendError) -> Date? { nil }
    public func assumeDirectories(_ known: Set<String>) {}
    public func newlyKnownDirectories() -> Set<String> { [] }
}

/// Storage the operator may remove from (`fbk prune`, FORMAT.md 14): a
/// storage root, or a WebDAV account of deploy/nginx/fbk-prune.conf.
/// Never a client's account: clients only ever create.
public protocol RemovableStorage: Backend {
    /// Moves the object `path` to `newPath` under `destination`, another
    /// directory of the same server (the same kind of storage), creating
    /// the directories on the way and never replacing an object there.
    func move(_ path: String, to destination: any RemovableStorage, as newPath: String) throws(BackendError)
    /// Deletes an object, or a directory with everything in it.
    func delete(_ path: String) throws(BackendError)
    /// The entries directly in `directory` ("" is the top): names, and whether each is a directory.
    func members(of directory: String) throws(BackendError) -> [(name: String, isDirectory: Bool)]
    /// Until when the storage refuses to remove the object (S3 Object
    /// Lock, a legal hold: `distantFuture`); nil when it may go now.
    func retainedUntil(_ path: String) throws(BackendError) -> Date?
}

extension RemovableStorage {
    public func retainedUntil(_ path: String) throws(BackendError) -> Date? { nil }
}

extension Backend {
    /// Whether the object exists; a failure to find out is thrown, never
    /// taken for "no".
    public func exists(_ path: String) throws(BackendError) -> Bool {
        do {
            _ = try stat(path)
            return true
        } catch where error.kind == .notFound {
            return false
        }
    }

    /// A whole object of at most `limit` bytes, in memory.
    public func read(_ path: String, limit: Int, what: String) throws(BackendError) -> [UInt8] {
        let object = try fetch(path, limit: limit)
        do {
            return try object.bytes(what: what)
        } catch {
            throw BackendError(.permanent, location: location, error.message, cause: error)
        }
    }
}

/// Paths a reader accepts from catalogs and records: relative, without
/// `.` or `..` components, so nothing can leave the client's directory.
package func isContainedPath(_ path: String) -> Bool {
    !path.isEmpty && !path.hasPrefix("/") && !path.split(separator: "/", omittingEmptySubsequences: false)
        .contains(where: { $0 == ".." || $0 == "." || $0.isEmpty })
}
