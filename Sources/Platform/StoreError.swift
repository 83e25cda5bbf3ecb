// The error every store target throws: what failed, its cause, and what
// to do next. Foreign errors are mapped to it at each target's boundary.

import FoundationEssentials
import Glibc

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
        /// Another library's error, kept as the cause (a key that does not
        /// open, a malformed object, something unexpected).
        public static let underlying = Code(name: "underlying")
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
    package static func wrapping(_ error: any Error, as code: Code, _ context: String? = nil) -> StoreError {
        if let e = error as? StoreError { return e }
        let prefix = context.map { $0 + ": " } ?? ""
        if error is CocoaError || error is POSIXError {
            return StoreError(.io, prefix + describe(error), cause: error)
        }
        return StoreError(code, prefix + String(describing: error), cause: error)
    }

    public var description: String { message }
}

extension StoreError {
    /// Runs a target's public entry point, so that every error leaving it
    /// is a StoreError: a StoreError as it is; a file-system error from
    /// Foundation or errno as i/o (a full disk is exit 74 wherever it
    /// happens); any other error (a SealError, a FormatError…) kept whole
    /// as the cause, so the command line still tells a wrong key from
    /// damaged data.
    public static func boundary<R>(_ body: () throws -> R) throws(StoreError) -> R {
        do { return try body() } catch { throw wrapping(error, as: .underlying) }
    }
}
