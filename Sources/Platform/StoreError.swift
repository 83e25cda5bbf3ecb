// Store's errors: what failed, and what to do next.

/// An error from the Store module.
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

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
