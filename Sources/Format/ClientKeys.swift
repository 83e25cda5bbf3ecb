// The client secret and the keys derived from it (FORMAT.md, "Client secret").

import FoundationEssentials
import Glibc
import Seal
import Chunker
import Platform

/// A client's 32-byte secret and what it keys: chunk IDs, the chunker
/// table and the client's signing key. Never leaves the client except in
/// the operator's sealed escrow copy.
public struct ClientKeys: Sendable {
    public let secret: [UInt8]

    /// HMAC-SHA256(secret, "fbk chunk id v1"): keys chunk IDs.
    package let chunkIDKey: [UInt8]
    /// HMAC-SHA256(secret, "fbk chunker seed v1"): seeds the buzhash table.
    public let chunkerSeed: [UInt8]
    /// HMAC-SHA256(secret, "fbk signing key v1"): the Ed25519 seed.
    package let signingSeed: [UInt8]
    /// HMAC-SHA256(secret, "fbk listing key v1"): the AES-256-GCM key of pack listings.
    package let listingKey: [UInt8]

    public init(secret: [UInt8]) throws(StoreError) {
        guard secret.count == 32 else {
            throw StoreError(.config, "the client secret must be 32 bytes, got \(secret.count)")
        }
        self.secret = secret
        chunkIDKey = HMACSHA256.mac(key: secret, Array("fbk chunk id v1".utf8)).bytes
        chunkerSeed = HMACSHA256.mac(key: secret, Array("fbk chunker seed v1".utf8)).bytes
        signingSeed = HMACSHA256.mac(key: secret, Array("fbk signing key v1".utf8)).bytes
        listingKey = HMACSHA256.mac(key: secret, Array("fbk listing key v1".utf8)).bytes
    }

    public func signingKey() -> SigningKey { try! SigningKey(seed: signingSeed) }

    /// The chunk ID of `plaintext`.
    public func chunkID(_ plaintext: UnsafeRawBufferPointer) -> ChunkID {
        let h = HMACSHA256(key: chunkIDKey)
        h.update(plaintext)
        return h.finalize()
    }

    /// Reads a secret file: 64 hex digits and an optional newline, mode 0600.
    /// - Throws: `StoreError` (.config) naming the file and the problem.
    public static func load(path: String) throws(StoreError) -> ClientKeys {
        let data = try readOperatorFile(path, limit: 4096, what: "client secret", advice: "create one with fbk init")
        var st = stat()
        if stat(path, &st) == 0, st.st_mode & 0o077 != 0 {
            throw StoreError(.config, "the client secret \(path) is readable by others (mode \(String(st.st_mode & 0o777, radix: 8))); chmod 600 it")
        }
        let text = String(decoding: data, as: UTF8.self).trimmingWhitespace()
        guard text.utf8.count == 64, let bytes = Hex.decode(text) else {
            throw StoreError(.config, "the client secret \(path) is not 64 hexadecimal digits")
        }
        return try ClientKeys(secret: bytes)
    }

    /// Creates a new random secret file (mode 0600); refuses to overwrite.
    public static func create(path: String) throws(StoreError) -> ClientKeys {
        let secret = secureRandomBytes(32)
        do {
            try DurableFile.create(path, with: Array((Hex.encode(secret) + "\n").utf8), mode: 0o600)
        } catch where error.exists {
            throw StoreError(.config, "cannot create the client secret \(path): it exists already", cause: error.error)
        } catch {
            throw error.error
        }
        return try ClientKeys(secret: secret)
    }
}
