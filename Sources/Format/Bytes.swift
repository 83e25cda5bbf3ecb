// Little-endian encoding helpers and a bounds-checked reader for parsing
// untrusted bytes (packs, trees): every read is checked, every length capped.

import Seal
import Chunker
import Platform

/// What a parser of untrusted data found wrong.
public struct FormatError: Error, CustomStringConvertible, Equatable, Sendable {
    public let object: String
    public let problem: String
    public var description: String { "\(object) is malformed: \(problem)" }
}

package struct ByteWriter {
    package var bytes: [UInt8] = []

    package init() {}

    package mutating func u8(_ v: UInt8) { bytes.append(v) }
    package mutating func u16(_ v: Int) { le(UInt64(v), 2) }
    package mutating func u32(_ v: Int) { le(UInt64(v), 4) }
    package mutating func u64(_ v: UInt64) { le(v, 8) }
    mutating func i64(_ v: Int64) { le(UInt64(bitPattern: v), 8) }
    package mutating func raw<C: Collection>(_ b: C) where C.Element == UInt8 { bytes.append(contentsOf: b) }
    /// A byte string with a 16-bit length.
    mutating func short(_ b: [UInt8]) { u16(b.count); raw(b) }
    /// A byte string with a 32-bit length.
    mutating func long(_ b: [UInt8]) { u32(b.count); raw(b) }

    private mutating func le(_ v: UInt64, _ n: Int) {
        withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: $0[..<n])) }
    }
}

package struct ByteReader {
    let bytes: [UInt8]
    var offset: Int
    let object: String

    package init(_ bytes: [UInt8], object: String, offset: Int = 0) {
        self.bytes = bytes
        self.object = object
        self.offset = offset
    }

    package var remaining: Int { bytes.count - offset }

    package func fail(_ problem: String) -> FormatError { FormatError(object: object, problem: problem) }

    mutating func take(_ n: Int, _ what: String) throws(FormatError) -> ArraySlice<UInt8> {
        guard n >= 0, n <= remaining else {
            throw fail("\(what) needs \(n) bytes at offset \(offset), only \(remaining) left")
        }
        defer { offset += n }
        return bytes[offset..<(offset + n)]
    }

    package mutating func u8(_ what: String) throws(FormatError) -> UInt8 { try take(1, what).first! }
    package mutating func u16(_ what: String) throws(FormatError) -> Int { Int(try le(2, what)) }
    package mutating func u32(_ what: String) throws(FormatError) -> Int { Int(try le(4, what)) }
    package mutating func u64(_ what: String) throws(FormatError) -> UInt64 { try le(8, what) }
    mutating func i64(_ what: String) throws(FormatError) -> Int64 { Int64(bitPattern: try le(8, what)) }
    /// A 64-bit offset or size that must fit a signed 64-bit integer (as
    /// file offsets do); a forged larger one is an error, not a trap.
    mutating func offset(_ what: String) throws(FormatError) -> Int {
        let v = try le(8, what)
        guard v <= UInt64(Int64.max) else { throw fail("\(what) \(v) is beyond any file size") }
        return Int(v)
    }
    mutating func short(_ what: String) throws(FormatError) -> [UInt8] { Array(try take(try u16(what), what)) }
    mutating func long(_ what: String, limit: Int) throws(FormatError) -> [UInt8] {
        let n = try u32(what)
        guard n <= limit else { throw fail("\(what) of \(n) bytes exceeds the limit of \(limit)") }
        return Array(try take(n, what))
    }
    mutating func digest(_ what: String) throws(FormatError) -> Digest { Digest(bytes: Array(try take(32, what)))! }

    private mutating func le(_ n: Int, _ what: String) throws(FormatError) -> UInt64 {
        var v: UInt64 = 0
        for (i, b) in try take(n, what).enumerated() { v |= UInt64(b) << (8 * UInt64(i)) }
        return v
    }
}
