// Reading an object from storage whole, but only after its size is known
// to be within what its kind may be: a hostile server can put a sparse
// file of any size under any name, and nothing fbk reads may grow memory
// with it.

import Foundation

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

/// Reads a whole file of at most `limit` bytes, checking the size first
/// (and not following a symbolic link in its last component).
/// - Throws: `StoreError.integrity` when it is larger, `.io` when it cannot be read.
public func readBounded(_ path: String, limit: Int, what: String) throws(StoreError) -> [UInt8] {
    // O_NONBLOCK: a FIFO planted under an object's name must not hang the reader (fstat then refuses it).
    let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)
    guard fd >= 0 else { throw StoreError(.io, "cannot read \(what) \(path): \(String(cString: strerror(errno)))") }
    defer { close(fd) }
    var st = stat()
    guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
        throw StoreError(.integrity, "\(what) \(path) is not a regular file")
    }
    guard Int(st.st_size) <= limit else {
        throw StoreError(.integrity, "\(what) \(path) is \(st.st_size) bytes, more than the \(limit) any such object may have: it was not written by fbk")
    }
    var bytes = [UInt8](repeating: 0, count: Int(st.st_size))
    var done = 0
    while done < bytes.count {
        let n = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + done, $0.count - done, off_t(done)) }
        if n < 0 && errno == EINTR { continue }
        guard n > 0 else { throw StoreError(.io, "cannot read \(what) \(path): \(n == 0 ? "it shrank while read" : String(cString: strerror(errno)))") }
        done += n
    }
    return bytes
}

/// The size of a regular file, or nil.
func regularFileSize(_ path: String) -> Int? {
    var st = stat()
    guard lstat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return nil }
    return Int(st.st_size)
}

/// An RFC 3339 UTC time as fbk writes it (`2026-11-27T03:00:00.123Z`;
/// fractions ignored), or nil.
public func parseRFC3339(_ text: String) -> Date? {
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
