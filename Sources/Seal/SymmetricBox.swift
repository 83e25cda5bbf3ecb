// AES-256-GCM with a key the client derives from its own secret: for the
// few objects that must be readable without the operator's private key
// but not by the servers (pack listings for the index rebuild).

internal import COpenSSL

/// Authenticated symmetric encryption: `nonce (12) || ciphertext || tag (16)`.
public enum SymmetricBox {
    /// Encrypts `plaintext` under a 32-byte key, binding `associatedData`.
    public static func seal(_ plaintext: [UInt8], key: [UInt8], associatedData: [UInt8]) throws(SealError) -> [UInt8] {
        let sealer = try Sealer(key: key, associatedData: associatedData)
        var box = sealer.nonce + plaintext
        try box.withUnsafeMutableBytes { b in
            let text = UnsafeMutableRawBufferPointer(rebasing: b[nonceLength...])
            return Result { () throws(SealError) in try sealer.encrypt(UnsafeRawBufferPointer(text), into: text) }
        }.get()
        return box + (try sealer.finish())
    }

    public static let nonceLength = 12

    /// Seals a stream a piece at a time, with the layout of `seal`: write
    /// `nonce` first, then what `encrypt` gives for each piece, then the
    /// tag `finish` returns. Nothing is held back between pieces.
    public final class Sealer {
        /// A fresh random nonce, the first 12 bytes of the box.
        public let nonce: [UInt8]
        private let context: OpaquePointer
        private let cipher: OpaquePointer
        private var finished = false

        /// - Throws: `SealError` for a key that is not 32 bytes or a library failure.
        public init(key: [UInt8], associatedData: [UInt8]) throws(SealError) {
            guard key.count == 32 else { throw SealError(.invalidArgument, "an AES-256 key is 32 bytes") }
            guard let ctx = EVP_CIPHER_CTX_new() else { throw SealError.openSSL(.library, "AES-256-GCM is not available") }
            guard let cipher = EVP_CIPHER_fetch(nil, "AES-256-GCM", nil) else {
                EVP_CIPHER_CTX_free(ctx)
                throw SealError.openSSL(.library, "AES-256-GCM is not available")
            }
            context = ctx
            self.cipher = cipher
            nonce = secureRandomBytes(SymmetricBox.nonceLength)
            var n: Int32 = 0
            guard EVP_CipherInit_ex2(ctx, cipher, key, nonce, 1, nil) == 1,
                  associatedData.isEmpty || EVP_CipherUpdate(ctx, nil, &n, associatedData, Int32(associatedData.count)) == 1 else {
                throw SealError.openSSL(.library, "AES-256-GCM failed")
            }
        }

        deinit {
            EVP_CIPHER_CTX_free(context)
            EVP_CIPHER_free(cipher)
        }

        /// Encrypts the next piece into `output` (at least as long; it may
        /// be the input itself: GCM is a stream mode).
        public func encrypt(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) throws(SealError) {
            precondition(!finished && output.count >= input.count)
            guard let from = input.baseAddress, let to = output.baseAddress, input.count > 0 else { return }
            var written: Int32 = 0
            guard input.count <= Int(Int32.max),
                  EVP_CipherUpdate(context, to.assumingMemoryBound(to: UInt8.self), &written,
                                   from.assumingMemoryBound(to: UInt8.self), Int32(input.count)) == 1,
                  Int(written) == input.count else {
                throw SealError.openSSL(.library, "AES-256-GCM failed")
            }
        }

        /// Ends the stream.
        /// - Returns: the 16-byte tag, the last bytes of the box.
        public func finish() throws(SealError) -> [UInt8] {
            precondition(!finished)
            finished = true
            var final: Int32 = 0
            var scratch = [UInt8](repeating: 0, count: 16)
            var tag = [UInt8](repeating: 0, count: 16)
            guard EVP_CipherFinal_ex(context, &scratch, &final) == 1, final == 0,
                  EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_GCM_GET_TAG, 16, &tag) == 1 else {
                throw SealError.openSSL(.library, "AES-256-GCM failed")
            }
            return tag
        }
    }

    /// Decrypts and authenticates.
    /// - Throws: `SealError.authenticationFailed` if anything was changed or the key is wrong.
    public static func open(_ box: [UInt8], key: [UInt8], associatedData: [UInt8]) throws(SealError) -> [UInt8] {
        guard key.count == 32 else { throw SealError(.invalidArgument, "an AES-256 key is 32 bytes") }
        guard box.count >= 28 else { throw SealError(.truncatedObject, "the box is shorter than its nonce and tag") }
        let nonce = Array(box.prefix(12))
        let body = Array(box[12..<(box.count - 16)])
        var tag = Array(box.suffix(16))
        var out = [UInt8](repeating: 0, count: body.count + 16)
        try decrypt(key: key, nonce: nonce, aad: associatedData, input: body, output: &out, tag: &tag)
        return Array(out.prefix(body.count))
    }

    private static func decrypt(key: [UInt8], nonce: [UInt8], aad: [UInt8], input: [UInt8],
                             output: inout [UInt8], tag: inout [UInt8]) throws(SealError) {
        guard let ctx = EVP_CIPHER_CTX_new() else { throw SealError.openSSL(.library, "AES-256-GCM is not available") }
        defer { EVP_CIPHER_CTX_free(ctx) }
        guard let cipher = EVP_CIPHER_fetch(nil, "AES-256-GCM", nil) else { throw SealError.openSSL(.library, "AES-256-GCM is not available") }
        defer { EVP_CIPHER_free(cipher) }
        var n: Int32 = 0
        var ok = EVP_CipherInit_ex2(ctx, cipher, key, nonce, 0, nil) == 1
        if !aad.isEmpty { ok = ok && EVP_CipherUpdate(ctx, nil, &n, aad, Int32(aad.count)) == 1 }
        var written: Int32 = 0
        if !input.isEmpty { ok = ok && EVP_CipherUpdate(ctx, &output, &written, input, Int32(input.count)) == 1 }
        guard ok, EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16, &tag) == 1 else {
            throw SealError.openSSL(.library, "AES-256-GCM failed")
        }
        var final: Int32 = 0
        let fin = output.withUnsafeMutableBufferPointer { EVP_CipherFinal_ex(ctx, $0.baseAddress! + Int(written), &final) }
        _ = OpenSSLErrors.drain()
        guard fin == 1 else { throw SealError(.authenticationFailed, "authentication failed: the box was altered, or the key is wrong") }
    }
}
