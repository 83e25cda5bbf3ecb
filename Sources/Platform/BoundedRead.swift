// Reading an object from storage whole, but only after its size is known
// to be within what its kind may be: a hostile server can put a sparse
// file of any size under any name, and nothing fbk reads may grow memory
// with it.

import FoundationEssentials
import Glibc

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
package func regularFileSize(_ path: String) -> Int? {
    var st = stat()
    guard lstat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return nil }
    return Int(st.st_size)
}
