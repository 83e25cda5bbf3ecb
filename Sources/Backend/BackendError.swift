// What a backend says when an operation fails: the kind decides what the
// caller does (look elsewhere, skip, retry, stop), the message what the
// operator does.

import FoundationEssentials
import Glibc
import Platform

/// A failed backend operation.
public struct BackendError: Error, CustomStringConvertible, Sendable {
    public enum Kind: String, Sendable {
        /// The object is not there (HTTP 404, ENOENT).
        case notFound = "not found"
        /// An object of that name is there already (create-only put).
        case alreadyExists = "already exists"
        /// Retrying cannot help: credentials, permissions, a wrong URL, a
        /// full disk, an object larger than its kind may be.
        case permanent
        /// It may work later: the server is down, a 5xx, a timeout, a reset.
        case transient
    }

    public let kind: Kind
    /// The backend's location (a URL or path), for messages.
    public let location: String
    public let message: String
    /// True when the server refuses this client as configured (401, 403, a
    /// wrong directory or scheme): nothing reaches it until the
    /// configuration or the server is fixed. A server that is down or full
    /// is not misconfigured.
    public var misconfigured = false
    /// True when the server accepted the connection and then said nothing
    /// for the stall timeout: down for the rest of the run, not retried.
    public var silent = false
    /// Set when the object may not be removed yet: S3 Object Lock keeps it
    /// until this time (a legal hold: `distantFuture`). Prune reports it.
    public var retainedUntil: Date?
    /// What failed underneath (an errno text, a curl error), when known.
    public var cause: (any Error)?

    public init(_ kind: Kind, location: String, _ message: String, misconfigured: Bool = false, cause: (any Error)? = nil) {
        self.kind = kind
        self.location = location
        self.message = message
        self.misconfigured = misconfigured
        self.cause = cause
    }

    /// True when retrying cannot help.
    public var permanent: Bool { kind == .permanent }
    /// The mirror's URL (the name uploads use in their summaries).
    public var mirror: String { location }

    public var description: String { "\(location): \(message)" }

    /// The same failure as a `StoreError` for a command's boundary: a
    /// missing or damaged object is an integrity problem, the rest i/o.
    package var storeError: StoreError {
        StoreError(kind == .notFound ? .integrity : (misconfigured ? .config : .io), description, cause: self)
    }
}

/// A failed upload (the name the archiver and its summaries use).
public typealias MirrorFailure = BackendError
