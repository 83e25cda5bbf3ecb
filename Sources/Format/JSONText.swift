// JSON text written by hand where Foundation's encoder would first build a
// tree of values several times the size of its output (pack listings).

import Seal
import Chunker
import Platform

enum JSONText {
    /// Bytes as a JSON string of lower-case hex digits.
    static func appendHexString<C: Collection<UInt8>>(_ bytes: C, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        Hex.append(bytes, to: &out)
        out.append(UInt8(ascii: "\""))
    }

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
            case 0..<0x20:
                out += Array("\\u00".utf8)
                Hex.append([b], to: &out)
            default: out.append(b)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}
