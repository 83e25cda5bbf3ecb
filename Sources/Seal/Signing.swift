// Ed25519 signatures (RFC 8032) for origin: a client signs its snapshots
// and catalogs with a key derived from its own secret, and anyone holding
// the public half (recorded at enrollment) can verify them, without the
// operator's decryption key.

internal import COpenSSL

/// A client's Ed25519 signing key.
public final class SigningKey: @unchecked Sendable {
    let pkey: OpaquePointer

    /// Derives the key from a 32-byte seed (RFC 8032 private key).
    /// - Throws: `SealError.invalidArgument` unless the seed is 32 bytes.
    public init(seed: [UInt8]) throws(SealError) {
        guard seed.count == 32 else { throw SealError(.invalidArgument, "an Ed25519 seed is 32 bytes, got \(seed.count)") }
        guard let k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nil, seed, 32) else {
            throw SealError.openSSL(.library, "cannot make an Ed25519 key")
        }
        pkey = k
    }

    deinit { EVP_PKEY_free(pkey) }

    /// The 32-byte public key.
    public var publicKey: VerifyingKey {
        var raw = [UInt8](repeating: 0, count: 32)
        var length = 32
        precondition(EVP_PKEY_get_raw_public_key(pkey, &raw, &length) == 1 && length == 32)
        return VerifyingKey(uncheckedRaw: raw)
    }

    /// The 64-byte signature of `message`. The corresponding C function is `EVP_DigestSign`.
    public func sign(_ message: [UInt8]) -> [UInt8] {
        guard let ctx = EVP_MD_CTX_new() else { fatalError("EVP_MD_CTX_new: out of memory") }
        defer { EVP_MD_CTX_free(ctx) }
        precondition(EVP_DigestSignInit(ctx, nil, nil, nil, pkey) == 1, "EVP_DigestSignInit failed")
        var signature = [UInt8](repeating: 0, count: 64)
        var length = 64
        precondition(EVP_DigestSign(ctx, &signature, &length, message, message.count) == 1 && length == 64,
                     "EVP_DigestSign failed")
        return signature
    }
}

/// The public half of a client's signing key.
public struct VerifyingKey: Hashable, Sendable, CustomStringConvertible {
    /// The 32 raw bytes (RFC 8032 encoding).
    public let raw: [UInt8]

    init(uncheckedRaw: [UInt8]) { raw = uncheckedRaw }

    /// - Throws: `SealError.invalidArgument` unless 32 bytes.
    public init(raw: [UInt8]) throws(SealError) {
        guard raw.count == 32 else { throw SealError(.invalidArgument, "an Ed25519 public key is 32 bytes, got \(raw.count)") }
        self.raw = raw
    }

    public var hex: String { Hex.encode(raw) }
    public var description: String { hex }

    /// Whether `signature` is this key's signature of `message`.
    public func verify(_ signature: [UInt8], of message: [UInt8]) -> Bool {
        message.withUnsafeBytes { verify(signature, of: $0) }
    }

    /// Whether `signature` is this key's signature of borrowed bytes.
    public func verify(_ signature: [UInt8], of message: UnsafeRawBufferPointer) -> Bool {
        guard signature.count == 64,
              let pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nil, raw, 32) else { return false }
        defer { EVP_PKEY_free(pkey) }
        guard let ctx = EVP_MD_CTX_new() else { return false }
        defer { EVP_MD_CTX_free(ctx) }
        guard EVP_DigestVerifyInit(ctx, nil, nil, nil, pkey) == 1 else { return false }
        let ok = signature.withUnsafeBytes { sig in
            // An empty message still needs a valid pointer: the signature's.
            EVP_DigestVerify(ctx, sig.bindMemory(to: UInt8.self).baseAddress, 64, message.baseAddress ?? sig.baseAddress, message.count) == 1
        }
        _ = OpenSSLErrors.drain()
        return ok
    }
}
