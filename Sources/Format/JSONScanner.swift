// A forward-only reader of JSON bytes, for the one part of a document that
// grows with the data: the pack listing of a snapshot record (a chunk each,
// millions in a large first snapshot). Decoding it with Foundation would
// hold a decoded tree several times the size of the text; this reads it a
// pack at a time. Every malformed input is a `FormatError`, never a crash.

import Seal
import Chunker
import Platform

struct JSONScanner {
    private let bytes: [UInt8]
    private(set) var at: Int
    private let end: Int
    private let name: String
    /// Nesting allowed when skipping a value of no interest.
    static let maxDepth = 64

    init(_ bytes: [UInt8], from start: Int, to end: Int, name: String) {
        self.bytes = bytes
        self.at = start
        self.end = end
        self.name = name
    }

    func fail(_ problem: String) -> FormatError {
        FormatError(object: name, problem: "JSON does not match the format: \(problem) at byte \(at)")
    }

    var atEnd: Bool { at >= end }

    mutating func skipSpace() {
        while at < end, bytes[at] == 0x20 || bytes[at] == 0x0A || bytes[at] == 0x0D || bytes[at] == 0x09 { at += 1 }
    }

    /// Consumes `c` (after any space) if it comes next.
    mutating func consume(_ c: UInt8) -> Bool {
        skipSpace()
        guard at < end, bytes[at] == c else { return false }
        at += 1
        return true
    }

    mutating func expect(_ c: UInt8) throws(FormatError) {
        guard consume(c) else { throw fail("expected '\(Character(Unicode.Scalar(c)))'") }
    }

    /// A chunk ID: a string of 64 hex digits, or nil if the string is not
    /// one. Spelled without escapes, as fbk writes it, it is decoded where
    /// it lies (a listing holds one per chunk, and this is most of reading
    /// it); any other spelling goes through `string()`, so what is accepted
    /// is the same either way.
    mutating func digest() throws(FormatError) -> Digest? {
        skipSpace()
        let quote = UInt8(ascii: "\"")
        if at + 66 <= end, bytes[at] == quote, bytes[at + 65] == quote {
            let start = at + 1
            if let decoded = bytes.withUnsafeBufferPointer({ Hex.decode(digits: UnsafeBufferPointer(rebasing: $0[start..<start + 64])) }) {
                at += 66
                return Digest(bytes: decoded)
            }
        }
        return Digest(hex: try string())
    }

    /// A string value, its escapes decoded.
    mutating func string() throws(FormatError) -> String {
        try expect(UInt8(ascii: "\""))
        var out: [UInt8] = []
        while at < end {
            let c = bytes[at]
            at += 1
            switch c {
            case UInt8(ascii: "\""):
                return String(decoding: out, as: UTF8.self)
            case UInt8(ascii: "\\"):
                guard at < end else { throw fail("unfinished escape") }
                let e = bytes[at]
                at += 1
                switch e {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    guard at + 4 <= end, let v = UInt32(String(decoding: bytes[at..<at + 4], as: UTF8.self), radix: 16) else {
                        throw fail("bad \\u escape")
                    }
                    at += 4
                    // Names of packs are ASCII; a surrogate or other scalar that is not one stands for U+FFFD.
                    out += Array(String(Character(Unicode.Scalar(v) ?? "\u{FFFD}")).utf8)
                default: throw fail("bad escape")
                }
            case 0..<0x20:
                throw fail("control character in a string")
            default:
                out.append(c)
            }
        }
        throw fail("unfinished string")
    }

    /// A non-negative integer of at most 18 digits.
    mutating func integer() throws(FormatError) -> Int {
        skipSpace()
        var value = 0, digits = 0
        while at < end, bytes[at] >= 0x30, bytes[at] <= 0x39 {
            guard digits < 18 else { throw fail("number too large") }
            value = value * 10 + Int(bytes[at] - 0x30)
            digits += 1
            at += 1
        }
        guard digits > 0 else { throw fail("expected a non-negative integer") }
        return value
    }

    /// Skips one value of any kind.
    mutating func skipValue(depth: Int = 0) throws(FormatError) {
        guard depth < Self.maxDepth else { throw fail("nested too deeply") }
        skipSpace()
        guard at < end else { throw fail("value expected") }
        switch bytes[at] {
        case UInt8(ascii: "\""):
            _ = try string()
        case UInt8(ascii: "{"):
            at += 1
            if consume(UInt8(ascii: "}")) { return }
            repeat {
                _ = try string()
                try expect(UInt8(ascii: ":"))
                try skipValue(depth: depth + 1)
            } while consume(UInt8(ascii: ","))
            try expect(UInt8(ascii: "}"))
        case UInt8(ascii: "["):
            at += 1
            if consume(UInt8(ascii: "]")) { return }
            repeat { try skipValue(depth: depth + 1) } while consume(UInt8(ascii: ","))
            try expect(UInt8(ascii: "]"))
        default:
            // A number or a literal: its characters up to a delimiter.
            let start = at
            while at < end, !",}] \n\r\t".utf8.contains(bytes[at]) { at += 1 }
            let token = String(decoding: bytes[start..<at], as: UTF8.self)
            guard token == "true" || token == "false" || token == "null" || Double(token) != nil else {
                throw fail("bad value \(token.prefix(20).debugDescription)")
            }
        }
    }

    /// Reads a pack listing, `[{"chunks": [["hex ID", kind, length], …], "path": "…"}, …]`,
    /// handing over one pack at a time.
    mutating func packListing(_ eachPack: (String, [(id: ChunkID, length: Int)]) throws -> Void) throws {
        try expect(UInt8(ascii: "["))
        if consume(UInt8(ascii: "]")) { return }
        repeat {
            try expect(UInt8(ascii: "{"))
            var path: String?
            var chunks: [(id: ChunkID, length: Int)]?
            repeat {
                let key = try string()
                try expect(UInt8(ascii: ":"))
                switch key {
                case "path" where path == nil:
                    path = try string()
                case "chunks" where chunks == nil:
                    var list: [(id: ChunkID, length: Int)] = []
                    try expect(UInt8(ascii: "["))
                    if !consume(UInt8(ascii: "]")) {
                        repeat {
                            try expect(UInt8(ascii: "["))
                            guard let id = try digest() else { throw fail("a chunk ID is not 64 hex digits") }
                            try expect(UInt8(ascii: ","))
                            _ = try integer()
                            try expect(UInt8(ascii: ","))
                            let length = try integer()
                            try expect(UInt8(ascii: "]"))
                            list.append((id, length))
                        } while consume(UInt8(ascii: ","))
                        try expect(UInt8(ascii: "]"))
                    }
                    chunks = list
                default:
                    throw fail("unexpected key \(key.prefix(40).debugDescription) in a pack listing")
                }
            } while consume(UInt8(ascii: ","))
            try expect(UInt8(ascii: "}"))
            guard let path, let chunks else { throw fail("a pack listing lacks its path or chunks") }
            try eachPack(path, chunks)
        } while consume(UInt8(ascii: ","))
        try expect(UInt8(ascii: "]"))
    }

    /// Reads a catalog's objects, `[{"path": "…", "sha256": "…", "size": N}, …]`
    /// (keys in any order, each once), handing over one at a time.
    mutating func catalogObjects(_ each: (Catalog.Object) throws -> Void) throws {
        try expect(UInt8(ascii: "["))
        if consume(UInt8(ascii: "]")) { return }
        repeat {
            try expect(UInt8(ascii: "{"))
            var path: String?, sha: String?, size: Int?
            repeat {
                let key = try string()
                try expect(UInt8(ascii: ":"))
                switch key {
                case "path" where path == nil: path = try string()
                case "sha256" where sha == nil: sha = try string()
                case "size" where size == nil: size = try integer()
                default: throw fail("unexpected key \(key.prefix(40).debugDescription) in a catalog's object")
                }
            } while consume(UInt8(ascii: ","))
            try expect(UInt8(ascii: "}"))
            guard let path, let sha, let size else { throw fail("a catalog's object lacks its path, sha256 or size") }
            try each(Catalog.Object(path: path, size: size, sha256: sha))
        } while consume(UInt8(ascii: ","))
        try expect(UInt8(ascii: "]"))
    }
}
