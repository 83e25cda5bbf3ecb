// The packs a snapshot run created, with their chunks, kept compactly until
// the run writes its record and listing (which list them all). A chunk
// costs 37 bytes here, where a decoded `PackListing` costs about 150, and
// the JSON is written straight from this form: Foundation's encoder would
// first build a tree of values several times the size of its output.

import Seal

struct NewPackLog {
    private(set) var packs: [(path: String, chunkCount: Int)] = []
    /// Per chunk: ID (32) || kind (1) || plain length (LE32).
    private var chunks: [UInt8] = []
    static let recordSize = 37

    static let hexDigits = Array("0123456789abcdef".utf8)

    var chunkCount: Int { chunks.count / Self.recordSize }

    mutating func append(path: String, entries: [PackEntry]) {
        packs.append((path, entries.count))
        chunks.reserveCapacity(chunks.count + entries.count * Self.recordSize)
        for e in entries {
            chunks += e.id.bytes
            chunks.append(e.kind.rawValue)
            let n = UInt32(e.plainLength)
            chunks += [UInt8(n & 0xFF), UInt8(n >> 8 & 0xFF), UInt8(n >> 16 & 0xFF), UInt8(n >> 24)]
        }
    }

    /// The packs as a JSON array of `PackListing`, byte for byte what
    /// JSONEncoder writes with sorted keys and unescaped slashes.
    func json() -> [UInt8] {
        var out: [UInt8] = []
        appendJSON(to: &out)
        return out
    }

    /// About the length of `json()`, for reserving a buffer once.
    var jsonLengthEstimate: Int { chunks.count * 3 + packs.count * 96 + 2 }

    /// Appends `json()` to a buffer that holds the rest of a document.
    func appendJSON(to out: inout [UInt8]) {
        out.reserveCapacity(out.count + jsonLengthEstimate)
        out.append(UInt8(ascii: "["))
        var record = 0
        for (p, pack) in packs.enumerated() {
            if p > 0 { out.append(UInt8(ascii: ",")) }
            out += Array(#"{"chunks":["#.utf8)
            for c in 0..<pack.chunkCount {
                let base = record * Self.recordSize
                if c > 0 { out.append(UInt8(ascii: ",")) }
                // A chunk is `["hex ID",kind,length]` (see PackListing.ListedChunk).
                out += Array(#"[""#.utf8)
                for b in chunks[base..<base + 32] {
                    out.append(Self.hexDigits[Int(b >> 4)])
                    out.append(Self.hexDigits[Int(b & 15)])
                }
                out += Array(#"","#.utf8)
                out += Array(String(chunks[base + 32]).utf8)
                out.append(UInt8(ascii: ","))
                let length = UInt32(chunks[base + 33]) | UInt32(chunks[base + 34]) << 8
                    | UInt32(chunks[base + 35]) << 16 | UInt32(chunks[base + 36]) << 24
                out += Array(String(length).utf8)
                out.append(UInt8(ascii: "]"))
                record += 1
            }
            out += Array(#"],"path":"#.utf8)
            JSONText.appendString(pack.path, to: &out)
            out.append(UInt8(ascii: "}"))
        }
        out.append(UInt8(ascii: "]"))
    }
}

enum JSONText {
    /// A JSON string as JSONEncoder writes it with `.withoutEscapingSlashes`.
    static func appendString(_ s: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "\""): out += [92, 34]
            case UInt8(ascii: "\\"): out += [92, 92]
            case 0x08: out += [92, UInt8(ascii: "b")]
            case 0x0C: out += [92, UInt8(ascii: "f")]
            case 0x0A: out += [92, UInt8(ascii: "n")]
            case 0x0D: out += [92, UInt8(ascii: "r")]
            case 0x09: out += [92, UInt8(ascii: "t")]
            case 0..<0x20: out += Array("\\u00".utf8) + [NewPackLog.hexDigits[Int(b >> 4)], NewPackLog.hexDigits[Int(b & 15)]]
            default: out.append(b)
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    /// Appends `json` to `out` with its first `"key":[]` replaced by `"key":`
    /// and what `writeArray` appends, so a large array is written once,
    /// straight into the document's buffer. Only a key can match: inside a
    /// string value a quote is escaped.
    static func splice(_ json: [UInt8], emptyArrayKey key: String, into out: inout [UInt8], reserving: Int,
                       writeArray: (inout [UInt8]) -> Void) {
        let needle = Array("\"\(key)\":[]".utf8)
        guard let at = json.firstRange(of: needle) else { preconditionFailure("\(key) is not in the encoded document") }
        // The rest of the document and its signature line (about 140 bytes) fit too.
        out.reserveCapacity(out.count + json.count + reserving + 160)
        out += json[..<at.lowerBound]
        out += Array("\"\(key)\":".utf8)
        writeArray(&out)
        out += json[at.upperBound...]
    }
}
