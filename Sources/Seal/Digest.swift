// SHA-256 and HMAC-SHA256 through OpenSSL's EVP interface (which uses the
// CPU's SHA extensions where present).

internal import COpenSSL
import FoundationEssentials
import Glibc

/// A 32-byte SHA-256 or HMAC-SHA256 value.
public struct Digest: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The 32 bytes.
    public let bytes: [UInt8]

    /// Wraps 32 bytes; returns nil for any other length.
    public init?(bytes: [UInt8]) {
        guard bytes.count == 32 else { return nil }
        self.bytes = bytes
    }

    /// Parses 64 hexadecimal digits (either case); nil otherwise.
    public init?(hex: String) {
        guard hex.utf8.count == 64, let b = Hex.decode(hex) else { return nil }
        bytes = b
    }

    /// Lower-case hexadecimal, 64 digits.
    public var hex: String { Hex.encode(bytes) }
    public var description: String { hex }
    /// The first 8 hex digits, for messages.
    public var shortDescription: String { String(hex.prefix(8)) }

    public static func < (a: Digest, b: Digest) -> Bool { a.bytes.lexicographicallyPrecedes(b.bytes) }
}

/// Hexadecimal text.
public enum Hex {
    private static let digits = Array("0123456789abcdef".utf8)

    public static func encode<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        append(bytes, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Appends the lower-case hex digits of `bytes` to a byte buffer.
    public static func append<C: Collection>(_ bytes: C, to out: inout [UInt8]) where C.Element == UInt8 {
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 15)])
        }
    }

    /// The bytes spelled by an even number of hex digits, or nil.
    public static func decode(_ text: String) -> [UInt8]? {
        var text = text
        return text.withUTF8 { decode(digits: $0) }
    }

    /// The bytes spelled by the hex digits `t` (ASCII bytes, an even
    /// number of them), or nil; read where they lie, not copied first.
    package static func decode(digits t: UnsafeBufferPointer<UInt8>) -> [UInt8]? {
        guard t.count % 2 == 0 else { return nil }
        var out = [UInt8]()
        out.reserveCapacity(t.count / 2)
        var i = 0
        while i < t.count {
            guard let hi = value(t[i]), let lo = value(t[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
            i += 2
        }
        return out
    }

    private static func value(_ c: UInt8) -> UInt8? {
        switch c {
        case 48...57: c - 48
        case 97...102: c - 87
        case 65...70: c - 55
        default: nil
        }
    }
}

/// Incremental SHA-256. The corresponding C functions are
/// `EVP_DigestInit_ex2`, `EVP_DigestUpdate` and `EVP_DigestFinal_ex`.
public final class SHA256 {
    nonisolated(unsafe) private static let algorithm: OpaquePointer = {
        guard let md = EVP_MD_fetch(nil, "SHA2-256", nil) else {
            fatalError("OpenSSL provides no SHA2-256: \(OpenSSLErrors.drain().text)")
        }
        return md
    }()

    private let context: OpaquePointer

    public init() {
        guard let ctx = EVP_MD_CTX_new() else { fatalError("EVP_MD_CTX_new: out of memory") }
        context = ctx
        precondition(EVP_DigestInit_ex2(ctx, Self.algorithm, nil) == 1, "EVP_DigestInit_ex2 failed")
    }

    deinit { EVP_MD_CTX_free(context) }

    /// Adds bytes to the hash.
    public func update(_ data: UnsafeRawBufferPointer) {
        guard data.count > 0 else { return }
        precondition(EVP_DigestUpdate(context, data.baseAddress, data.count) == 1, "EVP_DigestUpdate failed")
    }

    public func update<D: ContiguousBytes>(_ data: D) {
        data.withUnsafeBytes { update($0) }
    }

    /// The digest of everything added; the hasher starts over afterwards.
    public func finalize() -> Digest {
        var out = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        precondition(EVP_DigestFinal_ex(context, &out, &length) == 1 && length == 32, "EVP_DigestFinal_ex failed")
        precondition(EVP_DigestInit_ex2(context, Self.algorithm, nil) == 1, "EVP_DigestInit_ex2 failed")
        return Digest(bytes: out)!
    }

    /// SHA-256 of `data`.
    public static func hash<D: ContiguousBytes>(_ data: D) -> Digest {
        let h = SHA256()
        h.update(data)
        return h.finalize()
    }

    /// SHA-256 of a file's contents, read in 1 MiB pieces.
    /// - Throws: `SealError` (`.io`) if the file cannot be read.
    public static func hash(fileAt path: String) throws(SealError) -> (digest: Digest, size: Int) {
        let h = SHA256()
        var size = 0
        try forEachPiece(ofFileAt: path) { piece in
            h.update(piece)
            size += piece.count
        }
        return (h.finalize(), size)
    }
}

/// Calls `body` with a file's contents (or bytes `range` of it, which the
/// file must hold), read in 1 MiB pieces. Without a range the file is read
/// to its end, so it may be a pipe.
/// - Throws: `SealError` (`.io`) if the file cannot be read, or what `body` throws.
func forEachPiece(ofFileAt path: String, range: Range<Int>? = nil,
                  _ body: (UnsafeRawBufferPointer) throws(SealError) -> Void) throws(SealError) {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw SealError(.io, "cannot open \(path): \(String(cString: strerror(errno)))") }
    defer { close(fd) }
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
    defer { buffer.deallocate() }
    var offset = range?.lowerBound ?? 0
    while offset < range?.upperBound ?? .max {
        let want = min(buffer.count, (range?.upperBound ?? .max) - offset)
        let n = range == nil ? read(fd, buffer.baseAddress, want) : pread(fd, buffer.baseAddress, want, off_t(offset))
        if n < 0 {
            if errno == EINTR { continue }
            throw SealError(.io, "cannot read \(path): \(String(cString: strerror(errno)))")
        }
        if n == 0 {
            if range != nil { throw SealError(.io, "cannot read \(path) at \(offset): it ends early") }
            return
        }
        try body(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
        offset += n
    }
}

/// HMAC-SHA256 with a fixed key. The corresponding C functions are
/// `EVP_MAC_init`, `EVP_MAC_update` and `EVP_MAC_final`.
public final class HMACSHA256 {
    nonisolated(unsafe) private static let algorithm: OpaquePointer = {
        guard let mac = EVP_MAC_fetch(nil, "HMAC", nil) else {
            fatalError("OpenSSL provides no HMAC: \(OpenSSLErrors.drain().text)")
        }
        return mac
    }()

    private let context: OpaquePointer
    private let key: [UInt8]

    /// - Parameter key: the secret key (any length; fbk uses 32 bytes).
    public init(key: [UInt8]) {
        guard let ctx = EVP_MAC_CTX_new(Self.algorithm) else { fatalError("EVP_MAC_CTX_new: out of memory") }
        context = ctx
        self.key = key
        restart()
    }

    deinit {
        EVP_MAC_CTX_free(context)
    }

    private func restart() {
        let ok = "digest".withCString { name in
            "SHA256".withCString { value in
                var params = [
                    OSSL_PARAM_construct_utf8_string(name, UnsafeMutablePointer(mutating: value), 0),
                    OSSL_PARAM_construct_end(),
                ]
                return key.withUnsafeBufferPointer { k in
                    EVP_MAC_init(context, k.baseAddress, k.count, &params)
                }
            }
        }
        precondition(ok == 1, "EVP_MAC_init failed: \(OpenSSLErrors.drain().text)")
    }

    public func update(_ data: UnsafeRawBufferPointer) {
        guard data.count > 0 else { return }
        precondition(EVP_MAC_update(context, data.baseAddress?.assumingMemoryBound(to: UInt8.self), data.count) == 1,
                     "EVP_MAC_update failed")
    }

    public func update<D: ContiguousBytes>(_ data: D) {
        data.withUnsafeBytes { update($0) }
    }

    /// The MAC of everything added; starts over with the same key afterwards.
    public func finalize() -> Digest {
        var out = [UInt8](repeating: 0, count: 32)
        var length = 0
        precondition(EVP_MAC_final(context, &out, &length, 32) == 1 && length == 32, "EVP_MAC_final failed")
        restart()
        return Digest(bytes: out)!
    }

    /// HMAC-SHA256 of `data` under `key`.
    public static func mac<D: ContiguousBytes>(key: [UInt8], _ data: D) -> Digest {
        let h = HMACSHA256(key: key)
        h.update(data)
        return h.finalize()
    }
}

/// Cryptographically secure random bytes. The corresponding C function is `RAND_bytes`.
public func secureRandomBytes(_ count: Int) -> [UInt8] {
    var out = [UInt8](repeating: 0, count: count)
    precondition(RAND_bytes(&out, Int32(count)) == 1, "RAND_bytes failed: \(OpenSSLErrors.drain().text)")
    return out
}
