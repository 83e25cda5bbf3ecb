// Parsing the names of objects under a client's directory (FORMAT.md 2):
// a reader believes a name only once it has the exact form a writer gives.

import Chunker
import Seal
import Platform

/// Checks on server paths, the counterpart of `Layout`, which builds them.
public enum ObjectName {
    /// `packs/ab/abcdef….pack`: 64 lower-case hex digits, under their first two.
    public static func isPack(_ path: String) -> Bool {
        let b = Array(path.utf8)
        guard b.count == 6 + 3 + 64 + 5, path.hasPrefix("packs/"), path.hasSuffix(".pack"), b[8] == UInt8(ascii: "/") else { return false }
        let hex = b[9..<73]
        return hex.allSatisfy(isLowerHex) && b[6] == hex.first! && b[7] == hex[hex.startIndex + 1]
    }

    /// A snapshot ID: `YYYYMMDDTHHMMSSZ-` and 16 lower-case hex digits.
    public static func isSnapshotID(_ id: String) -> Bool {
        let b = Array(id.utf8)
        guard b.count == 33, b[8] == UInt8(ascii: "T"), b[15] == UInt8(ascii: "Z"), b[16] == UInt8(ascii: "-") else { return false }
        return b[0..<8].allSatisfy(isDigit) && b[9..<15].allSatisfy(isDigit) && b[17...].allSatisfy(isLowerHex)
    }

    private static func isDigit(_ c: UInt8) -> Bool { c >= 48 && c <= 57 }
    private static func isLowerHex(_ c: UInt8) -> Bool { isDigit(c) || (c >= 97 && c <= 102) }
}
