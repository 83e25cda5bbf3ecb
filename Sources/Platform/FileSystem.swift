// POSIX helpers for walking: paths are raw bytes throughout, because file
// names are bytes, not text.

package import CLinux
import FoundationEssentials
import Glibc
import Dispatch

/// A path as bytes (no trailing NUL).
package typealias PathBytes = [UInt8]

extension Array where Element == UInt8 {
    /// Calls `body` with a NUL-terminated copy.
    package func withCPath<R>(_ body: (UnsafePointer<CChar>) throws -> R) rethrows -> R {
        try (self + [0]).withUnsafeBufferPointer { try $0.withMemoryRebound(to: CChar.self) { try body($0.baseAddress!) } }
    }

    /// Calls `body` with a directory descriptor and a name relative to it
    /// that together name this path, also past PATH_MAX: a path shorter
    /// than `FileSystem.pieceLimit` goes whole with AT_FDCWD; a longer one
    /// has its parent opened piece by piece and closed afterwards. If the
    /// parent cannot be opened, `body` gets -1 (its call fails) and errno,
    /// once `body` returns, says why.
    package func withAtPath<R>(_ body: (Int32, UnsafePointer<CChar>) throws -> R) rethrows -> R {
        guard count >= FileSystem.pieceLimit, let slash = lastIndex(of: UInt8(ascii: "/")), slash > 0 else {
            return try withCPath { try body(AT_FDCWD, $0) }
        }
        let directory = FileSystem.openDirectory(Array(self[..<slash]))
        let cause = errno
        defer {
            if directory >= 0 { close(directory) } else { errno = cause }
        }
        return try Array(self[(slash + 1)...]).withCPath { try body(directory, $0) }
    }

    /// Calls `body` with a path of at most a few hundred bytes naming this
    /// one (for calls without an *at form, like the xattr ones): this path
    /// itself when short, else the parent's `/proc/self/fd` link and the name.
    package func withShortPath<R>(_ body: (UnsafePointer<CChar>) throws -> R) rethrows -> R {
        try withAtPath { directory, name in
            if directory == AT_FDCWD { return try body(name) }
            return try (Array("/proc/self/fd/\(directory)/".utf8) + Array(String(cString: name).utf8)).withCPath(body)
        }
    }

    /// The path for human output, control characters escaped (`terminalSafe`).
    package var displayPath: String { String(decoding: self, as: UTF8.self).terminalSafe }

    package func appendingComponent(_ name: [UInt8]) -> [UInt8] {
        self == [UInt8(ascii: "/")] ? self + name : self + [UInt8(ascii: "/")] + name
    }
}

/// A directory's names, packed: one buffer of bytes and a word per name
/// (offset and length), about 20 bytes a name where an array of arrays
/// takes some 60. A directory of a million entries is listed whole, to be
/// walked in name order.
package struct NameList {
    private var bytes: [UInt8] = []
    /// offset << 8 | length (names are at most 255 bytes).
    private var spans: [UInt64] = []

    package init() {}

    package init(_ names: [PathBytes]) {
        for n in names { n.withUnsafeBufferPointer { append($0) } }
        sort()
    }

    package var count: Int { spans.count }

    package subscript(i: Int) -> PathBytes {
        let span = spans[i]
        let offset = Int(span >> 8)
        return Array(bytes[offset..<(offset + Int(span & 0xFF))])
    }

    mutating func append(_ name: UnsafeBufferPointer<UInt8>) {
        spans.append(UInt64(bytes.count) << 8 | UInt64(min(name.count, 255)))
        bytes.append(contentsOf: name.prefix(255))
    }

    /// Sorts by name bytes.
    mutating func sort() {
        bytes.withUnsafeBufferPointer { b in
            spans.sort { x, y in
                let a = UnsafeBufferPointer(rebasing: b[Int(x >> 8)..<(Int(x >> 8) + Int(x & 0xFF))])
                let c = UnsafeBufferPointer(rebasing: b[Int(y >> 8)..<(Int(y >> 8) + Int(y & 0xFF))])
                return a.lexicographicallyPrecedes(c)
            }
        }
    }
}

package enum FileSystem {
    /// Paths at least this long are resolved in pieces (PATH_MAX is 4096).
    static let pieceLimit = 3800

    /// Opens a directory (O_PATH, enough to be the base of *at calls)
    /// whatever the length of its path, in pieces shorter than `pieceLimit`.
    /// Returns -1 with errno set on failure.
    static func openDirectory(_ path: PathBytes) -> Int32 {
        var base = AT_FDCWD
        var start = 0
        while start < path.count {
            var end = path.count
            if end - start >= pieceLimit {
                guard let slash = path[start..<(start + pieceLimit)].lastIndex(of: UInt8(ascii: "/")), slash > start else {
                    if base >= 0 { close(base) }
                    errno = ENAMETOOLONG
                    return -1
                }
                end = slash
            }
            let fd = Array(path[start..<end]).withCPath { openat(base, $0, openPathOnly | O_DIRECTORY | O_CLOEXEC) }
            let cause = errno
            if base >= 0 { close(base) }
            guard fd >= 0 else {
                errno = cause
                return -1
            }
            base = fd
            start = end + 1
        }
        return base == AT_FDCWD ? open(".", openPathOnly | O_DIRECTORY | O_CLOEXEC) : base
    }

    package static func lstat(_ path: PathBytes) -> stat? {
        var st = stat()
        return path.withAtPath { fstatat($0, $1, &st, AT_SYMLINK_NOFOLLOW) } == 0 ? st : nil
    }

    package static func errnoText() -> String { String(cString: strerror(errno)) }

    /// Writes all of `bytes` to `fd`, again after EINTR and short writes.
    /// - Returns: nil when all were written; else why not, as an errno
    ///   (0 when a write took no bytes).
    package static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Int32? {
        var done = 0
        while done < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + done, bytes.count - done)
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return n == 0 ? 0 : errno }
            done += n
        }
        return nil
    }

    /// What `writeAll` returned, in words.
    package static func writeFailureText(_ code: Int32) -> String {
        code == 0 ? "a write took no bytes" : String(cString: strerror(code))
    }

    /// The wall clock, in nanoseconds since 1970, as file times are kept.
    package static func wallClock() -> Int64 {
        var t = timespec()
        clock_gettime(CLOCK_REALTIME, &t)
        return t.nanoseconds
    }

    /// Bytes an unprivileged writer may still use on the filesystem holding `path`.
    package static func availableBytes(_ path: String) -> Int? {
        var s = statvfs()
        guard statvfs(path, &s) == 0 else { return nil }
        return Int(s.f_bavail) * Int(s.f_frsize)
    }

    /// Opens a regular file for reading without following a link, without
    /// blocking on a FIFO swapped in, and without touching its atime where
    /// permitted (O_NOATIME needs ownership or CAP_FOWNER).
    package static func openForReading(_ path: PathBytes) -> Result<Int32, Errno> {
        var fd = path.withAtPath { openat($0, $1, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | openNoAtime) }
        if fd < 0 && errno == EPERM {
            fd = path.withAtPath { openat($0, $1, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC) }
        }
        return fd >= 0 ? .success(fd) : .failure(Errno(errno))
    }

    /// Directory entry names, sorted by bytes, without . and ..
    package static func listDirectory(_ path: PathBytes) -> Result<NameList, Errno> {
        let fd = path.withAtPath { openat($0, $1, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
        guard fd >= 0 else { return .failure(Errno(errno)) }
        guard let dir = fdopendir(fd) else {
            let cause = errno
            close(fd)
            return .failure(Errno(cause))
        }
        defer { closedir(dir) }
        var names = NameList()
        while true {
            errno = 0
            guard let entry = readdir(dir) else {
                if errno != 0 { return .failure(Errno(errno)) }
                break
            }
            withUnsafeBytes(of: entry.pointee.d_name) { raw in
                let bytes = raw.bindMemory(to: UInt8.self)
                let name = UnsafeBufferPointer(rebasing: bytes[0..<(bytes.firstIndex(of: 0) ?? bytes.count)])
                if name.elementsEqual([46]) || name.elementsEqual([46, 46]) { return }
                names.append(name)
            }
        }
        names.sort()
        return .success(names)
    }

    package struct Errno: Error {
        package let code: Int32
        init(_ code: Int32) { self.code = code }
        package var text: String { String(cString: strerror(code)) }
    }

    package static func readlink(_ path: PathBytes) -> PathBytes? {
        var buffer = [UInt8](repeating: 0, count: 4097)
        let n = path.withAtPath { d, p in buffer.withUnsafeMutableBufferPointer { readlinkat(d, p, UnsafeMutableRawPointer($0.baseAddress!).assumingMemoryBound(to: CChar.self), 4096) } }
        guard n >= 0 else { return nil }
        return Array(buffer[0..<n])
    }

    /// Extended attributes (including POSIX ACLs, which are xattrs), sorted by name.
    package typealias Xattrs = [(name: [UInt8], value: [UInt8])]

    /// Extended attributes of a path (not following a final link), sorted by name.
    static func xattrs(_ path: PathBytes) -> Xattrs {
        path.withShortPath { p in
            readXattrs(list: { llistxattr(p, $0, $1) }, get: { lgetxattr(p, $0, $1, $2) })
        }
    }

    /// Extended attributes of `name` in an open directory, without walking
    /// its whole path again (listxattrat/getxattrat); `path` where the
    /// kernel predates them.
    static func xattrs(in directory: Int32, name: PathBytes, path: PathBytes) -> Xattrs {
        guard xattrAtCalls else { return xattrs(path) }
        return name.withCPath { n in
            readXattrs(list: { CLinux_listxattrat(directory, n, $0, $1) }, get: { CLinux_getxattrat(directory, n, $0, $1, $2) })
        }
    }

    /// Extended attributes of entries of one directory, opened once.
    package static func xattrs(in directory: PathBytes, _ entries: [(name: PathBytes, path: PathBytes)]) -> [Xattrs] {
        withOpenDirectory(directory) { base in entries.map { xattrs(base: base, $0) } }
    }

    /// Calls `body` with the directory opened (O_PATH) for *at calls, or
    /// -1 if it cannot be (it vanished, or no search permission), when each
    /// entry is then reached by its own path and gives its own error.
    private static func withOpenDirectory<R>(_ directory: PathBytes, _ body: (Int32) -> R) -> R {
        let base = openDirectory(directory)
        defer { if base >= 0 { close(base) } }
        return body(base)
    }

    /// Extended attributes of an entry of the directory `base` (as
    /// `withOpenDirectory` gives it).
    private static func xattrs(base: Int32, _ entry: (name: PathBytes, path: PathBytes)) -> Xattrs {
        base >= 0 ? xattrs(in: base, name: entry.name, path: entry.path) : xattrs(entry.path)
    }

    /// Whether the kernel has listxattrat and getxattrat (Linux 6.13), probed once.
    static let xattrAtCalls: Bool = {
        if CLinux_listxattrat(AT_FDCWD, "/", nil, 0) >= 0 { return true }
        return errno != ENOSYS && errno != EPERM
    }()

    private static func readXattrs(list: (UnsafeMutablePointer<CChar>?, Int) -> Int,
                                   get: (UnsafePointer<CChar>, UnsafeMutableRawPointer?, Int) -> Int) -> Xattrs {
        let size = list(nil, 0)
        guard size > 0 else { return [] }
        var names = [CChar](repeating: 0, count: size)
        let n = list(&names, size)
        guard n > 0 else { return [] }
        var out: Xattrs = []
        for nameSlice in names[0..<n].split(separator: 0) {
            let name = nameSlice.map { UInt8(bitPattern: $0) }
            let valueSize = name.withCPath { get($0, nil, 0) }
            guard valueSize >= 0, valueSize <= 64 << 10 else { continue }
            var value = [UInt8](repeating: 0, count: valueSize)
            let got = name.withCPath { np in value.withUnsafeMutableBytes { get(np, $0.baseAddress, valueSize) } }
            guard got >= 0 else { continue }
            out.append((name, Array(value[0..<got])))
        }
        return out.sorted { $0.name.lexicographicallyPrecedes($1.name) }
    }

    /// lstat of each entry of a directory, and the extended attributes of
    /// those that are not regular files (a regular file's may be in the
    /// files cache, which only its stat can say), relative to the directory
    /// opened once (no path walked again per entry), on several threads
    /// when there are many: on a cold cache each is a disk read, and the
    /// disk serves several at once.
    package static func inspect(in directory: PathBytes, _ entries: [(name: PathBytes, path: PathBytes)]) -> [Result<(stat, Xattrs?), Errno>] {
        withOpenDirectory(directory) { base in inspect(base: base, entries) }
    }

    private static func inspect(base: Int32, _ entries: [(name: PathBytes, path: PathBytes)]) -> [Result<(stat, Xattrs?), Errno>] {
        @Sendable func one(_ entry: (name: PathBytes, path: PathBytes)) -> Result<(stat, Xattrs?), Errno> {
            var st = stat()
            if base >= 0 {
                guard entry.name.withCPath({ fstatat(base, $0, &st, AT_SYMLINK_NOFOLLOW) }) == 0 else { return .failure(Errno(errno)) }
            } else {
                guard let found = lstat(entry.path) else { return .failure(Errno(errno)) }
                st = found
            }
            return .success((st, st.fileType == S_IFREG ? nil : xattrs(base: base, entry)))
        }
        let threads = min(4, entries.count / 16)
        guard threads > 1 else { return entries.map(one) }
        let results = UnsafeMutableBufferPointer<Result<(stat, Xattrs?), Errno>>.allocate(capacity: entries.count)
        defer { results.deallocate() }
        nonisolated(unsafe) let out = results
        DispatchQueue.concurrentPerform(iterations: threads) { t in
            for i in stride(from: t, to: entries.count, by: threads) {
                (out.baseAddress! + i).initialize(to: one(entries[i]))
            }
        }
        let array = Array(results)
        _ = results.deinitialize()
        return array
    }

    /// Data regions of an open file (SEEK_DATA / SEEK_HOLE), or the whole file.
    package static func dataRegions(fd: Int32, size: Int, sparse: Bool) -> [(offset: Int, length: Int)] {
        guard sparse, size > 0 else { return size > 0 ? [(0, size)] : [] }
        // SEEK_DATA and SEEK_HOLE (Linux values; Glibc exports them only with _GNU_SOURCE).
        let seekData: Int32 = 3, seekHole: Int32 = 4
        var regions: [(offset: Int, length: Int)] = []
        var offset = 0
        while offset < size {
            let data = lseek(fd, offset, seekData)
            if data < 0 { break }  // ENXIO: only a hole remains
            var hole = lseek(fd, data, seekHole)
            if hole < 0 || hole > size { hole = size }
            if hole > data { regions.append((data, hole - data)) }
            offset = hole
        }
        return regions
    }
}

/// User and group names by ID, looked up once each.
package final class NameCache {
    private var users: [UInt32: [UInt8]] = [:]
    private var groups: [UInt32: [UInt8]] = [:]

    package init() {}

    package func user(_ uid: UInt32) -> [UInt8] {
        if let n = users[uid] { return n }
        var pwd = passwd(), result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 4096)
        var name: [UInt8] = []
        if getpwuid_r(uid, &pwd, &buffer, buffer.count, &result) == 0, result != nil, let p = pwd.pw_name {
            name = Array(String(cString: p).utf8)
        }
        users[uid] = name
        return name
    }

    package func group(_ gid: UInt32) -> [UInt8] {
        if let n = groups[gid] { return n }
        var grp = Glibc.group(), result: UnsafeMutablePointer<Glibc.group>?
        var buffer = [CChar](repeating: 0, count: 4096)
        var name: [UInt8] = []
        if getgrgid_r(gid, &grp, &buffer, buffer.count, &result) == 0, result != nil, let p = grp.gr_name {
            name = Array(String(cString: p).utf8)
        }
        groups[gid] = name
        return name
    }
}

extension timespec {
    /// Nanoseconds since 1970.
    package var nanoseconds: Int64 { Int64(tv_sec) * 1_000_000_000 + Int64(tv_nsec) }
}

extension stat {
    package var mtimeNanoseconds: Int64 { st_mtim.nanoseconds }
    package var ctimeNanoseconds: Int64 { st_ctim.nanoseconds }
    package var fileType: mode_t { st_mode & S_IFMT }
}

/// O_PATH (Linux; Glibc exports it only with _GNU_SOURCE): a descriptor
/// that names a directory for *at calls without opening it for reading.
let openPathOnly: Int32 = 0o10000000

/// O_NOATIME (Linux; Glibc exports it only with _GNU_SOURCE).
package let openNoAtime: Int32 = 0o1000000

/// Writes text to standard error at once (unbuffered, whole lines stay whole).
public func writeStandardError(_ text: String) {
    _ = Array(text.utf8).withUnsafeBytes { FileSystem.writeAll(2, $0) }
}
