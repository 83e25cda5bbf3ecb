// AES-256-GCM with a key the client derives from its own secret: for the
// few objects that must be readable without the operator's private key
// but not by the servers (pack listings for the index rebuild).

internal import COpenSSL

/// Authenticated symmetric encryption: `nonce (12) || ciphertext || tag (16)`.
public enum SymmetricBox {
    /// Encrypts `plaintext` under a 32-byte key, binding `associatedData`.
    public static func seal(_ plaintext: [UInt8], key: [UInt8], associatedData: [UInt8]) throws(SealError) -> [UInt8] {
        guard key.count == 32 else { throw SealError(.invalidArgument, "an AES-256 key is 32 bytes") }
        let nonce = secureRandomBytes(12)
        var out = [UInt8](repeating: 0, count: plaintext.count + 16)
        var tag = [UInt8](repeating: 0, count: 16)
        try run(encrypt: true, key: key, nonce: nonce, aad: associatedData, input: plaintext, output: &out, tag: &tag)
        return nonce + Array(out.prefix(plaintext.count)) + tag
    }

    public static let nonceLength = 12

    /// Seals in place: `buffer[nonceAt..<nonceAt + 12]` receives a fresh
    /// nonce, everything after it is encrypted where it lies and the tag is
    /// appended, giving the same layout as `seal` (nonce || ciphertext ||
    /// tag) without a second copy of a large plaintext.
    public static func seal(inPlace buffer: inout [UInt8], nonceAt: Int, key: [UInt8], associatedData: [UInt8]) throws(SealError) {
        guard key.count == 32 else { throw SealError(.invalidArgument, "an AES-256 key is 32 bytes") }
        precondition(nonceAt >= 0 && nonceAt + nonceLength <= buffer.count)
        let nonce = secureRandomBytes(nonceLength)
        buffer.replaceSubrange(nonceAt..<nonceAt + nonceLength, with: nonce)
        guard let ctx = EVP_CIPHER_CTX_new(), let cipher = EVP_CIPHER_fetch(nil, "AES-256-GCM", nil) else {
            throw SealError.openSSL(.library, "AES-256-GCM is not available")
        }
        defer { EVP_CIPHER_CTX_free(ctx); EVP_CIPHER_free(cipher) }
        let start = nonceAt + nonceLength
        var n: Int32 = 0, final: Int32 = 0
        var ok = EVP_CipherInit_ex2(ctx, cipher, key, nonce, 1, nil) == 1
        if !associatedData.isEmpty { ok = ok && EVP_CipherUpdate(ctx, nil, &n, associatedData, Int32(associatedData.count)) == 1 }
        ok = ok && buffer.withUnsafeMutableBufferPointer { b in
            let text = b.baseAddress! + start
            let count = b.count - start
            // GCM is a stream mode: OpenSSL encrypts in place and keeps nothing back.
            var written: Int32 = 0
            guard count == 0 || EVP_CipherUpdate(ctx, text, &written, text, Int32(count)) == 1, Int(written) == count else { return false }
            return EVP_CipherFinal_ex(ctx, text + count, &final) == 1 && final == 0
        }
        var tag = [UInt8](repeating: 0, count: 16)
        guard ok, EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, &tag) == 1 else {
            throw SealError.openSSL(.library, "AES-256-GCM failed")
        }
        buffer += tag
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
        try run(encrypt: false, key: key, nonce: nonce, aad: associatedData, input: body, output: &out, tag: &tag)
        return Array(out.prefix(body.count))
    }

    private static func run(encrypt: Bool, key: [UInt8], nonce: [UInt8], aad: [UInt8], input: [UInt8],
                            output: inout [UInt8], tag: inout [UInt8]) throws(SealError) {
        guard let ctx = EVP_CIPHER_CTX_new(), let cipher = EVP_CIPHER_fetch(nil, "AES-256-GCM", nil) else {
            throw SealError.openSSL(.library, "AES-256-GCM is not available")
        }
        defer { EVP_CIPHER_CTX_free(ctx); EVP_CIPHER_free(cipher) }
        var n: Int32 = 0
        var ok = EVP_CipherInit_ex2(ctx, cipher, key, nonce, encrypt ? 1 : 0, nil) == 1
        if !aad.isEmpty { ok = ok && EVP_CipherUpdate(ctx, nil, &n, aad, Int32(aad.count)) == 1 }
        var written: Int32 = 0
        if !input.isEmpty { ok = ok && EVP_CipherUpdate(ctx, &output, &written, input, Int32(input.count)) == 1 }
        guard ok else { throw SealError.openSSL(.library, "AES-256-GCM failed") }
        if encrypt {
            var final: Int32 = 0
            let fin = output.withUnsafeMutableBufferPointer { EVP_CipherFinal_ex(ctx, $0.baseAddress! + Int(written), &final) }
            guard fin == 1, EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, &tag) == 1 else {
                throw SealError.openSSL(.library, "AES-256-GCM failed")
            }
        } else {
            guard EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16, &tag) == 1 else { throw SealError.openSSL(.library, "AES-256-GCM failed") }
            var final: Int32 = 0
            let fin = output.withUnsafeMutableBufferPointer { EVP_CipherFinal_ex(ctx, $0.baseAddress! + Int(written), &final) }
            _ = OpenSSLErrors.drain()
            guard fin == 1 else { throw SealError(.authenticationFailed, "authentication failed: the box was altered, or the key is wrong") }
        }
    }
}
