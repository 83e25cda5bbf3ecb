// The error every store target throws: what failed, its cause, and what
// to do next. Foreign errors are mapped to it at each target's boundary.

import Foundation

/// An error from a store target (Platform up to Checker).
public struct StoreError: Error, CustomStringConvertible, Sendable {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        let name: String
        public var description: String { name }
        /// Bad or missing configuration (the message names the file and line).
        public static let config = Code(name: "configuration")
        /// The local index is missing, damaged or from another version.
        public static let index = Code(name: "index")
        /// Local files could not be read or written.
        public static let io = Code(name: "i/o")
        /// Not enough mirrors stored the snapshot.
        public static let mirrors = Code(name: "mirrors")
        /// Data read back is damaged or forged.
        public static let integrity = Code(name: "integrity")
        /// The run was stopped (SIGTERM, SIGINT).
        public static let interrupted = Code(name: "interrupted")
    }

    public let code: Code
    public let message: String
    /// What failed underneath (a SQLite, file-system or backend error), when
    /// another error led to this one; the message already says what to do.
    public let cause: (any Error)?

    public init(_ code: Code, _ message: String, cause: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
    }

    /// Any error as a StoreError at a target's boundary: a StoreError as it
    /// is; a file-system error (Foundation's, errno) as i/o, so that a full
    /// disk is exit 74 and never "damaged"; anything else with `code`.
    public static func wrapping(_ error: any Error, as code: Code, _ context: String) -> StoreError {
        if let e = error as? StoreError { return e }
        let ns = error as NSError
        if ns.domain == NSCocoaErrorDomain || ns.domain == NSPOSIXErrorDomain {
            return StoreError(.io, "\(context): \(ns.localizedDescription)", cause: error)
        }
        return StoreError(code, "\(context): \(error)", cause: error)
    }

    public var description: String { message }
}
