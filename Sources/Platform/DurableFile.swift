// Small files written whole and durably: a state file, a key, a bundle's
// configuration, metrics. Either the old content or the new one is there
// after a crash, never half of one; the bytes are on the disk before the
// call returns.

import Foundation

public enum DurableFile {
    /// Writes `bytes` as `path`, replacing what was there: through a
    /// temporary beside it, written in full, fsynced, renamed over `path`,
    /// and the directory synced. Never follows a link at the temporary.
    public static func replace(_ path: String, with bytes: [UInt8], mode: mode_t = 0o600) throws(StoreError) {
        let temporary = path + ".tmp-\(getpid())"
        unlink(temporary)
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode)
        guard fd >= 0 else { throw failure("cannot write", path) }
        let written = writeAll(fd, bytes) && fsync(fd) == 0
        let reason = String(cString: strerror(errno))
        close(fd)
        guard written, rename(temporary, path) == 0 else {
            let why = written ? String(cString: strerror(errno)) : reason
            unlink(temporary)
            throw StoreError(.io, "cannot write \(path): \(why)")
        }
        syncDirectory(of: path)
    }

    /// Creates `path` with `bytes`; refuses if anything is there already.
    /// - Throws: `StoreError.io`; `exists` tells a name taken from other failures.
    public static func create(_ path: String, with bytes: [UInt8], mode: mode_t) throws(CreateError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode)
        guard fd >= 0 else {
            let exists = errno == EEXIST
            throw CreateError(exists: exists, error: failure("cannot create", path))
        }
        let written = writeAll(fd, bytes) && fsync(fd) == 0
        let reason = String(cString: strerror(errno))
        close(fd)
        guard written else {
            unlink(path)
            throw CreateError(exists: false, error: StoreError(.io, "cannot write \(path): \(reason)"))
        }
        syncDirectory(of: path)
    }

    /// A failed `create`: the name was taken, or the write failed.
    public struct CreateError: Error, CustomStringConvertible {
        public let exists: Bool
        public let error: StoreError
        public var description: String { error.message }
    }

    private static func failure(_ what: String, _ path: String) -> StoreError {
        StoreError(.io, "\(what) \(path): \(String(cString: strerror(errno)))")
    }

    private static func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + done, $0.count - done) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return false }
            done += n
        }
        return true
    }

    private static func syncDirectory(of path: String) {
        let directory = (path as NSString).deletingLastPathComponent
        let dfd = open(directory.isEmpty ? "." : directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 { fsync(dfd); close(dfd) }
    }
}
