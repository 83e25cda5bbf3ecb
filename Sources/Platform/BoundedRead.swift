// Reading a file whole, but only once it is known to be a regular file
// within the size its kind may have. An object from storage: a hostile
// server can put a sparse file of any size, a FIFO or a link under any
// name, and nothing fbk reads may grow memory with it or wait on it. A
// file the operator named (configuration, secret, password, passphrase,
// signing key): a directory, a FIFO, /dev/zero or a file of gigabytes
// given by mistake gets a message saying so, never a hang, an
// allocation failure or the wrong advice.

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

/// Reads a whole local file the operator named (a configuration, the
/// client secret, a password or passphrase file, a signing key): a regular
/// file of at most `limit` bytes. Symbolic links are followed; a FIFO is
/// refused without waiting for a writer.
/// - Parameters:
///   - what: the file's role in messages, e.g. "configuration".
///   - owner: what the file is for, when that helps, e.g. a mirror's URL.
///   - advice: appended to the message when the file is missing (what to run instead).
/// - Throws: `StoreError.config` naming the file and what is wrong with it.
package func readOperatorFile(_ path: String, limit: Int, what: String, for owner: String? = nil,
                             advice: String? = nil) throws(StoreError) -> [UInt8] {
    let name = "\(what) \(path)" + (owner.map { " (for \($0))" } ?? "")
    let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
    guard fd >= 0 else {
        let e = errno
        switch e {
        case ENOENT, ENOTDIR:
            throw StoreError(.config, "there is no \(name)" + (advice.map { ": " + $0 } ?? ""))
        case EACCES, EPERM:
            throw StoreError(.config, "cannot read the \(name): \(String(cString: strerror(e))); run as a user that can read it (e.g. with sudo), or fix its owner and mode")
        default:
            throw StoreError(.config, "cannot read the \(name): \(String(cString: strerror(e)))")
        }
    }
    defer { close(fd) }
    var st = stat()
    guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
        throw StoreError(.config, "the \(name) is not a regular file (a directory, device or FIFO); give the path of the file itself")
    }
    let tooLarge = StoreError(.config, "the \(name) is larger than \(limit) bytes, more than any \(what) needs: is it the right file?")
    guard Int(st.st_size) <= limit else { throw tooLarge }
    // Read to the end rather than to st_size: files under /proc report 0.
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 16 << 10)
    while true {
        let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress!, $0.count) }
        if n < 0 && errno == EINTR { continue }
        guard n >= 0 else { throw StoreError(.config, "cannot read the \(name): \(String(cString: strerror(errno)))") }
        if n == 0 { return bytes }
        guard bytes.count + n <= limit else { throw tooLarge }
        bytes.append(contentsOf: buffer[..<n])
    }
}

/// The size of a regular file, or nil.
package func regularFileSize(_ path: String) -> Int? {
    var st = stat()
    guard lstat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return nil }
    return Int(st.st_size)
}
