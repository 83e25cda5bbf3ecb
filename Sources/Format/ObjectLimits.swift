// The largest object of each kind a reader reads whole (FORMAT.md 6), and
// the one time format every document uses: a reader checks a size before
// it reads, and parses a time only in the exact form a writer gives.

import FoundationEssentials
import Glibc
import Chunker
import Seal
import Platform

/// The largest object of each kind a reader reads whole (FORMAT.md 6).
public enum ObjectLimits {
    /// A sealed snapshot record, and a catalog: 16 MiB (a catalog lists
    /// about 150 bytes per pack, 100,000 packs of 16 MiB).
    public static let document = 16 << 20
    /// A pack listing: its size is the one its signed record names.
    public static let listing = 512 << 20
    /// The sealed client secret (64 hex digits and CMS headers).
    public static let escrow = 64 << 10
}

/// An RFC 3339 UTC time as fbk writes it (`2026-11-27T03:00:00.123Z`;
/// fractions ignored), or nil.
package func parseRFC3339(_ text: String) -> Date? {
    let b = Array(text.utf8)
    guard b.count >= 20, b[4] == UInt8(ascii: "-"), b[7] == UInt8(ascii: "-"), b[10] == UInt8(ascii: "T"),
          b[13] == UInt8(ascii: ":"), b[16] == UInt8(ascii: ":"), b.last == UInt8(ascii: "Z") else { return nil }
    func number(_ r: Range<Int>) -> Int32? {
        var v: Int32 = 0
        for i in r { guard b[i] >= 48, b[i] <= 57 else { return nil }; v = v * 10 + Int32(b[i] - 48) }
        return v
    }
    guard let y = number(0..<4), let mo = number(5..<7), let d = number(8..<10), let h = number(11..<13),
          let mi = number(14..<16), let s = number(17..<19) else { return nil }
    var t = tm()
    t.tm_year = y - 1900; t.tm_mon = mo - 1; t.tm_mday = d; t.tm_hour = h; t.tm_min = mi; t.tm_sec = s
    return Date(timeIntervalSince1970: TimeInterval(timegm(&t)))
}
