internal import COpenSSL

/// An error from the Seal module: what failed, and what to do about it.
public struct SealError: Error, Equatable, CustomStringConvertible, Sendable {
    /// What kind of failure this is; callers branch on it.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        let name: String
        public var description: String { name }

        /// A certificate or key file cannot be read or parsed.
        public static let unreadableKeyMaterial = Code(name: "unreadable key material")
        /// The passphrase does not decrypt the private key.
        public static let wrongPassphrase = Code(name: "wrong passphrase")
        /// The object is not encrypted to this private key.
        public static let wrongKey = Code(name: "wrong key")
        /// A certificate's key cannot be used as a CMS recipient.
        public static let unusableCertificate = Code(name: "unusable certificate")
        /// The input is not a CMS object (garbage, or cut short before its header ends).
        public static let malformedObject = Code(name: "malformed object")
        /// The object is incomplete: it ends before its content or tag does.
        public static let truncatedObject = Code(name: "truncated object")
        /// Authenticated decryption failed: the object was altered or damaged.
        public static let authenticationFailed = Code(name: "authentication failed")
        /// Compressed data is invalid, or does not have the expected size.
        public static let corruptCompressedData = Code(name: "corrupt compressed data")
        /// A file could not be read or written.
        public static let io = Code(name: "i/o error")
        /// OpenSSL or zstd failed in a way not classified above.
        public static let library = Code(name: "library error")
        /// Invalid arguments (level out of range, no recipients...).
        public static let invalidArgument = Code(name: "invalid argument")
    }

    public let code: Code
    /// What failed and what to do next, for a person.
    public let message: String
    /// The underlying library's own text, if any.
    public let detail: String?

    public init(_ code: Code, _ message: String, detail: String? = nil) {
        self.code = code
        self.message = message
        self.detail = detail
    }

    public var description: String {
        if let detail, !detail.isEmpty { return "\(message) (\(detail))" }
        return message
    }
}

/// OpenSSL's thread-local error queue, drained: the text for people and
/// the reason codes for classification. The corresponding C function is
/// `ERR_get_error`.
struct OpenSSLErrors {
    var text: String
    var reasons: [Int32]

    static func drain() -> OpenSSLErrors {
        var parts: [String] = []
        var reasons: [Int32] = []
        var buffer = [CChar](repeating: 0, count: 256)
        while true {
            let e = ERR_get_error()
            if e == 0 { break }
            reasons.append(ERR_GET_REASON(e))
            ERR_error_string_n(e, &buffer, buffer.count)
            parts.append(buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) })
        }
        return OpenSSLErrors(text: parts.joined(separator: "; "), reasons: reasons)
    }

    func has(_ reason: Int32) -> Bool { reasons.contains(reason) }
}

extension SealError {
    /// An error of `code` whose detail is OpenSSL's error queue (drained).
    static func openSSL(_ code: Code, _ message: String) -> SealError {
        SealError(code, message, detail: OpenSSLErrors.drain().text)
    }
}
