// Files written durably: a state file, a key, a bundle's configuration,
// metrics, a spool object. The bytes are on the disk before a write is
// said to be done; a replaced file is the old content or the new one
// after a crash, never half of one.

import FoundationEssentials
import Glibc

package enum DurableFile {
    /// A file being written: bytes go out as they come, `commit` syncs and
    /// closes it, and one never committed is removed when dropped.
    package final class Writer {
        package let path: String
        private var fd: Int32

        /// - Parameter exclusive: refuse a file that exists (else truncate it).
        package init(creating path: String, mode: mode_t = 0o600, exclusive: Bool = false) throws(CreateError) {
            self.path = path
            fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW | (exclusive ? O_EXCL : O_TRUNC), mode)
            guard fd >= 0 else {
                let exists = errno == EEXIST
                throw CreateError(exists: exists, error: StoreError(.io, "cannot create \(path): \(String(cString: strerror(errno)))"))
            }
        }

        deinit {
            if fd >= 0 {
                close(fd)
                unlink(path)
            }
        }

        package func write(_ bytes: UnsafeRawBufferPointer) throws(StoreError) {
            if let failure = FileSystem.writeAll(fd, bytes) {
                throw StoreError(.io, "cannot write \(path): \(FileSystem.writeFailureText(failure))")
            }
        }

        package func write(_ bytes: [UInt8]) throws(StoreError) {
            try bytes.withUnsafeBytes { b in Result { () throws(StoreError) in try write(b) } }.get()
        }

        /// Makes the file durable and closes it; a file that cannot be synced is removed.
        package func commit() throws(StoreError) {
            let synced = fsync(fd) == 0
            let reason = String(cString: strerror(errno))
            close(fd)
            fd = -1
            guard synced else {
                unlink(path)
                throw StoreError(.io, "cannot write \(path): \(reason)")
            }
        }
    }

    /// Writes `bytes` as `path`, replacing what was there: through a
    /// temporary beside it, written in full, synced, renamed over `path`,
    /// and the directory synced.
    package static func replace(_ path: String, with bytes: [UInt8], mode: mode_t = 0o600) throws(StoreError) {
        let temporary = path + ".tmp-\(getpid())"
        unlink(temporary)
        do {
            let writer = try Writer(creating: temporary, mode: mode, exclusive: true)
            try writer.write(bytes)
            try writer.commit()
        } catch let e as CreateError {
            throw StoreError(.io, "cannot write \(path): \(e.error.message)", cause: e.error)
        } catch {
            throw error as! StoreError
        }
        guard rename(temporary, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw StoreError(.io, "cannot write \(path): \(reason)")
        }
        syncDirectory(of: path)
    }

    /// Creates `path` with `bytes`; refuses if anything is there already.
    package static func create(_ path: String, with bytes: [UInt8], mode: mode_t) throws(CreateError) {
        let writer = try Writer(creating: path, mode: mode, exclusive: true)
        do {
            try writer.write(bytes)
            try writer.commit()
        } catch {
            throw CreateError(exists: false, error: error)
        }
        syncDirectory(of: path)
    }

    /// A file that could not be created: the name was taken, or the write failed.
    package struct CreateError: Error, CustomStringConvertible {
        package let exists: Bool
        package let error: StoreError
        package var description: String { error.message }
    }

    private static func syncDirectory(of path: String) {
        let directory = PathName.parent(path)
        let dfd = open(directory.isEmpty ? "." : directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 { fsync(dfd); close(dfd) }
    }
}
