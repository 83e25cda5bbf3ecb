// A client's directory on a local filesystem: a mirror's storage root
// read by the operator, the embedded default (`file://`), a copy on a
// disk, an NFS mount.

import FoundationEssentials
import Glibc
import Format
import Platform

/// Objects as files under a directory. Writes are create-only: each object
/// is written to a temporary name, synced, then hard-linked to its final
/// name, which fails rather than replace an existing file. Reads open
/// regular files only, never through a symbolic link, and check the size
/// first.
public struct DirectoryBackend: RemovableStorage {
    public let location: String
    /// The client's directory.
    public let root: String

    /// - Parameter url: `file:///absolute/path/of/the/client/directory/`.
    public init(url: String) throws(StoreError) {
        guard url.hasPrefix("file://") else { throw StoreError(.config, "\(url) is not a file:// URL") }
        var path = String(url.dropFirst("file://".count))
        path = PercentEncoding.decode(path) ?? path
        guard path.hasPrefix("/") else { throw StoreError(.config, "mirror \(url) must name an absolute path (file:///…)") }
        while path.count > 1 && path.hasSuffix("/") { path.removeLast() }
        location = url
        root = path
    }

    /// A client's directory under a storage root that must exist already
    /// (reading: a missing directory is a wrong root or client name).
    public init(storageRoot: String, client: String) throws(StoreError) {
        let directory = storageRoot + "/" + client
        var isDir: Bool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDir), isDir else {
            throw StoreError(.config, "\(storageRoot) has no directory for client \(client)")
        }
        location = directory
        root = directory
    }

    private func fail(_ kind: BackendError.Kind, _ message: String, errno code: Int32? = nil) -> BackendError {
        BackendError(kind, location: location, message, cause: code.map { POSIXError(POSIXErrorCode(rawValue: $0) ?? .EIO) })
    }

    private func errnoText(_ code: Int32) -> String { String(cString: strerror(code)) }

    /// The file of `path` under the client's directory. Every directory on
    /// the way must be a directory (or not exist yet): a symbolic link
    /// planted in place of `packs/ab` would lead reads and writes elsewhere.
    private func file(_ path: String) throws(BackendError) -> String {
        guard isContainedPath(path) else { throw fail(.permanent, "\(path) is not a path under the client's directory") }
        var directory = root
        for component in path.split(separator: "/").dropLast() {
            directory += "/" + component
            var st = Glibc.stat()
            if lstat(directory, &st) != 0 {
                let c = errno
                if c == ENOENT { break }
                throw fail(.transient, "cannot look at \(directory): \(errnoText(c))", errno: c)
            }
            guard (st.st_mode & S_IFMT) == S_IFDIR else {
                throw fail(.permanent, "\(directory) is not a directory (a link or file planted in its place): \(path) is refused")
            }
        }
        return root + "/" + path
    }

    // MARK: Writing

    public func put(_ path: String, from localFile: String, size: Int) throws(BackendError) -> PutOutcome {
        let target = try file(path)
        let directory = PathName.parent(target)
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o750])
        } catch {
            throw fail(.permanent, "cannot create \(directory): \(describe(error))")
        }
        if FileManager.default.fileExists(atPath: target) { return .alreadyPresent }
        let temporary = directory + "/.fbk-incoming-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { unlink(temporary) }
        try copy(localFile, to: temporary)
        if link(temporary, target) != 0 {
            let code = errno
            if code == EEXIST { return .alreadyPresent }
            throw fail(code == ENOSPC || code == EACCES ? .permanent : .transient, "cannot create \(target): \(errnoText(code))", errno: code)
        }
        let dfd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 { fsync(dfd); close(dfd) }
        return .stored
    }

    private func copy(_ source: String, to destination: String) throws(BackendError) {
        let input = open(source, O_RDONLY | O_CLOEXEC)
        guard input >= 0 else { let c = errno; throw fail(.permanent, "cannot read \(source): \(errnoText(c))", errno: c) }
        defer { close(input) }
        let output = open(destination, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o640)
        guard output >= 0 else {
            let c = errno
            throw fail(c == EACCES || c == ENOSPC ? .permanent : .transient, "cannot create \(destination): \(errnoText(c))", errno: c)
        }
        defer { close(output) }
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = Glibc.read(input, &buffer, buffer.count)
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { let c = errno; throw fail(.permanent, "cannot read \(source): \(errnoText(c))", errno: c) }
            if n == 0 { break }
            var written = 0
            while written < n {
                let w = buffer.withUnsafeBytes { write(output, $0.baseAddress! + written, n - written) }
                guard w > 0 else {
                    let c = errno
                    throw fail(c == ENOSPC ? .permanent : .transient, "cannot write \(destination): \(errnoText(c))", errno: c)
                }
                written += w
            }
        }
        guard fsync(output) == 0 else { let c = errno; throw fail(.transient, "cannot sync \(destination): \(errnoText(c))", errno: c) }
    }

    // MARK: Removing (fbk prune)

    public func move(_ path: String, to destination: any RemovableStorage, as newPath: String) throws(BackendError) {
        guard let other = destination as? DirectoryBackend else {
            throw fail(.permanent, "cannot move \(path) to \(destination.location): not the same storage")
        }
        let source = try file(path)
        let target = try other.file(newPath)
        let directory = PathName.parent(target)
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o750])
        } catch {
            throw fail(.permanent, "cannot create \(directory): \(describe(error))")
        }
        // A hard link then an unlink: never replaces what is there (rename would).
        guard link(source, target) == 0 else {
            let c = errno
            throw fail(c == EEXIST ? .alreadyExists : c == ENOENT ? .notFound : .permanent, "cannot move \(source) to \(target): \(errnoText(c))", errno: c)
        }
        guard unlink(source) == 0 else {
            let c = errno
            throw fail(.permanent, "cannot remove \(source) after linking it to \(target): \(errnoText(c))", errno: c)
        }
        for d in [directory, PathName.parent(source)] {
            let dfd = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            if dfd >= 0 { fsync(dfd); close(dfd) }
        }
    }

    public func delete(_ path: String) throws(BackendError) {
        let target = try file(path)
        do { try FileManager.default.removeItem(atPath: target) } catch {
            throw fail(.permanent, "cannot delete \(target): \(describe(error))")
        }
    }

    public func members(of directory: String) throws(BackendError) -> [(name: String, isDirectory: Bool)] {
        try entries(of: directory).map { ($0.name, $0.isDirectory) }
    }

    // MARK: Reading

    /// Opens a regular file without following a link or blocking on a FIFO.
    private func openRegular(_ path: String) throws(BackendError) -> (fd: Int32, size: Int, stat: stat) {
        let full = try file(path)
        let fd = open(full, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)
        guard fd >= 0 else {
            let c = errno
            throw fail(c == ENOENT || c == ENOTDIR ? .notFound : (c == ELOOP ? .permanent : .transient),
                       c == ELOOP ? "\(path) is a symbolic link, which no upload makes" : "cannot read \(path): \(errnoText(c))", errno: c)
        }
        var st = Glibc.stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
            close(fd)
            throw fail(.permanent, "\(path) is not a regular file")
        }
        return (fd, Int(st.st_size), st)
    }

    public func fetch(_ path: String, limit: Int) throws(BackendError) -> FetchedObject {
        let (fd, size, _) = try openRegular(path)
        close(fd)
        guard size <= limit else {
            throw fail(.permanent, "\(path) is \(size) bytes, more than the \(limit) any such object may have: it was not written by fbk")
        }
        return FetchedObject(path: root + "/" + path, size: size, temporary: false)
    }

    public func fetch(_ path: String, range: Range<Int>) throws(BackendError) -> [UInt8] {
        let (fd, size, _) = try openRegular(path)
        defer { close(fd) }
        let end = min(range.upperBound, size)
        guard range.lowerBound < end else { return [] }
        var bytes = [UInt8](repeating: 0, count: end - range.lowerBound)
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + done, $0.count - done, off_t(range.lowerBound + done)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { let c = errno; throw fail(.transient, "cannot read \(path): \(n == 0 ? "it shrank" : errnoText(c))", errno: c) }
            done += n
        }
        return bytes
    }

    public func stat(_ path: String) throws(BackendError) -> StoredObject {
        let full = try file(path)
        var st = Glibc.stat()
        guard lstat(full, &st) == 0 else {
            let c = errno
            throw fail(c == ENOENT || c == ENOTDIR ? .notFound : .transient, "cannot stat \(path): \(errnoText(c))", errno: c)
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw fail(.permanent, "\(path) is not a regular file") }
        return Self.object(path, st)
    }

    private static func object(_ path: String, _ st: stat) -> StoredObject {
        StoredObject(path: path, size: Int(st.st_size),
                     received: Date(timeIntervalSince1970: Double(st.st_mtim.tv_sec) + Double(st.st_mtim.tv_nsec) / 1e9),
                     receivedNanoseconds: Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec))
    }

    public func list(_ kind: ObjectKind) throws(BackendError) -> [StoredObject] {
        var directories = [kind.directory]
        if kind.isFannedOut { directories = try entries(of: kind.directory).filter { $0.isDirectory }.map { kind.directory + "/" + $0.name } }
        var out: [StoredObject] = []
        for directory in directories {
            // Anything but a directory under an object's name is listed: a
            // link or FIFO planted there is then refused by name when read,
            // not passed over in silence.
            for e in try entries(of: directory) where !e.isDirectory {
                let path = directory + "/" + e.name
                guard ObjectName(parsing: path)?.kind == kind, let st = e.stat else { continue }
                out.append(Self.object(path, st))
            }
        }
        return out.sorted { $0.path < $1.path }
    }

    private struct Entry {
        var name: String
        var stat: stat?
        var isRegular: Bool { stat.map { ($0.st_mode & S_IFMT) == S_IFREG } ?? false }
        var isDirectory: Bool { stat.map { ($0.st_mode & S_IFMT) == S_IFDIR } ?? false }
    }

    /// The entries of a directory under the client's, with their lstat; a
    /// directory that does not exist has none.
    private func entries(of directory: String) throws(BackendError) -> [Entry] {
        let full = root + "/" + directory
        var st = Glibc.stat()
        if lstat(full, &st) != 0 {
            let c = errno
            // Not there yet (no object of that kind): empty. Anything else is not "empty".
            if c == ENOENT { return [] }
            throw fail(.transient, "cannot list \(directory): \(errnoText(c))", errno: c)
        }
        guard (st.st_mode & S_IFMT) == S_IFDIR else {
            throw fail(.permanent, "\(directory) is not a directory (a link or file planted in its place)")
        }
        let names: [String]
        do { names = try FileManager.default.contentsOfDirectory(atPath: full) } catch {
            throw fail(.transient, "cannot list \(directory): \(describe(error))")
        }
        return names.sorted().map { name in
            var st = Glibc.stat()
            return Entry(name: name, stat: lstat(full + "/" + name, &st) == 0 ? st : nil)
        }
    }

    public func inventory() throws(BackendError) -> Inventory {
        var inventory = Inventory()
        var isDir: Bool = false
        guard FileManager.default.fileExists(atPath: root, isDirectory: &isDir), isDir else {
            throw fail(.notFound, "\(root) does not exist")
        }
        // Depth first, without following links: a link is listed as "other".
        var directories = [""]
        while let directory = directories.popLast() {
            let names: [String]
            do {
                names = try FileManager.default.contentsOfDirectory(atPath: directory.isEmpty ? root : root + "/" + directory)
            } catch {
                if directory.isEmpty { throw fail(.transient, "cannot list \(root): \(describe(error))") }
                // Gone since it was listed (a prune moving it): nothing to report.
                if let e = error as? CocoaError, (e.underlying as? POSIXError)?.code == .ENOENT || e.code == .fileReadNoSuchFile { continue }
                inventory.others.append(directory)
                continue
            }
            for name in names {
                let rel = directory.isEmpty ? name : directory + "/" + name
                var st = Glibc.stat()
                guard lstat(root + "/" + rel, &st) == 0 else { continue }
                let type = st.st_mode & S_IFMT
                if type == S_IFDIR { directories.append(rel); continue }
                guard type == S_IFREG else { inventory.others.append(rel); continue }
                inventory.objects.append(Self.object(rel, st))
            }
        }
        inventory.objects.sort { $0.path < $1.path }
        inventory.others.sort()
        return inventory
    }
}
