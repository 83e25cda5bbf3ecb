// A file opened for reading by descriptor: what Seal reads from disk
// (keys, certificates, sealed objects being opened) without Foundation's
// FileHandle, which FoundationEssentials does not have.

import Glibc

final class ReadOnlyFile {
    private let fd: Int32

    /// Nil when the file cannot be opened (`errno` says why) or is not a
    /// regular file (`errno` is then EINVAL): a FIFO named as a key or an
    /// object is refused at once, never waited on (O_NONBLOCK).
    init?(path: String) {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { return nil }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
            close(fd)
            errno = EINVAL
            return nil
        }
        self.fd = fd
    }

    deinit { close(fd) }

    /// Up to `count` bytes from `offset`; fewer only at the end of the file,
    /// nil on a read error.
    func read(at offset: Int, upTo count: Int) -> [UInt8]? {
        guard count > 0 else { return [] }
        var bytes = [UInt8](repeating: 0, count: count)
        guard let filled = bytes.withUnsafeMutableBytes({ read(at: offset, into: $0.baseAddress!, upTo: count) }) else { return nil }
        bytes.removeSubrange(filled...)
        return bytes
    }

    /// Reads up to `count` bytes from `offset` into `buffer`: the number
    /// read (fewer only at the end of the file), nil on a read error.
    func read(at offset: Int, into buffer: UnsafeMutableRawPointer, upTo count: Int) -> Int? {
        var filled = 0
        while filled < count {
            let n = pread(fd, buffer + filled, count - filled, off_t(offset + filled))
            if n < 0 { if errno == EINTR { continue } else { return nil } }
            if n == 0 { break }
            filled += n
        }
        return filled
    }
}
