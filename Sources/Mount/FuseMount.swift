// `fbk mount`: SnapshotFilesystem through libfuse3's high-level API,
// read-only, single-threaded (the repository is read by one thread), in
// the foreground until unmounted (`fusermount3 -u MOUNTPOINT`) or stopped
// by SIGINT/SIGTERM (libfuse unmounts then). A damaged chunk or an
// unreadable tree is EIO for that read, never a crash.

internal import CFuse
import FoundationEssentials
import Glibc
import Format
import Platform
import Restorer

public enum FuseMount {
    nonisolated(unsafe) static var filesystem: SnapshotFilesystem?
    nonisolated(unsafe) static var mountedAt = Date()

    /// Mounts and serves until unmounted. Returns libfuse's status (0: unmounted cleanly).
    public static func run(repository: Repository, mountpoint: String, options extra: [String] = []) -> Int32 {
        filesystem = SnapshotFilesystem(repository: repository)
        mountedAt = Date()
        var ops = fuse_operations()
        ops.getattr = { path, st, _ in
            guard let path, let st else { return -EINVAL }
            return FuseMount.getattr(String(cString: path), st)
        }
        ops.readlink = { path, buffer, size in
            guard let path, let buffer, size > 0 else { return -EINVAL }
            guard let target = FuseMount.readlink(String(cString: path)) else { return -EINVAL }
            let bytes = Array(target.utf8.prefix(size - 1)) + [0]
            bytes.withUnsafeBytes { raw in UnsafeMutableRawPointer(buffer).copyMemory(from: raw.baseAddress!, byteCount: raw.count) }
            return 0
        }
        ops.readdir = { path, buffer, filler, _, _, _ in
            guard let path, let filler else { return -EINVAL }
            do {
                guard let fs = FuseMount.filesystem, let node = try fs.node(String(cString: path)) else { return -ENOENT }
                for name in [".", ".."] + (try fs.list(node)) { _ = CFuse_fill(filler, buffer, name) }
                return 0
            } catch {
                FuseMount.report(error)
                return -EIO
            }
        }
        ops.open = { path, fi in
            guard let path, let fi else { return -EINVAL }
            if Int32(fi.pointee.flags) & O_ACCMODE != O_RDONLY { return -EROFS }
            do {
                guard let fs = FuseMount.filesystem, case .entry(let s, let e)? = try fs.node(String(cString: path)) else { return -ENOENT }
                guard e.type == .file else { return -EISDIR }
                CFuse_set_fh(fi, try fs.openFile(s, e))
                return 0
            } catch {
                FuseMount.report(error)
                return -EIO
            }
        }
        ops.read = { _, buffer, size, offset, fi in
            guard let buffer, let fi, offset >= 0, let fs = FuseMount.filesystem else { return -EINVAL }
            do {
                let bytes = try fs.read(CFuse_fh(fi), offset: UInt64(offset), count: size)
                bytes.withUnsafeBytes { raw in UnsafeMutableRawPointer(buffer).copyMemory(from: raw.baseAddress!, byteCount: raw.count) }
                return Int32(bytes.count)
            } catch {
                FuseMount.report(error)
                return -EIO
            }
        }
        ops.release = { _, fi in
            if let fi { FuseMount.filesystem?.closeFile(CFuse_fh(fi)) }
            return 0
        }
        let arguments = ["fbk", mountpoint, "-f", "-s", "-o", "ro,default_permissions,fsname=fbk,kernel_cache,attr_timeout=86400,entry_timeout=86400"] + extra
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        return CFuse_main(Int32(arguments.count), &argv, &ops)
    }

    static func getattr(_ path: String, _ st: UnsafeMutablePointer<stat>) -> Int32 {
        memset(st, 0, MemoryLayout<stat>.size)
        do {
            guard let fs = filesystem, let node = try fs.node(path) else { return -ENOENT }
            let now = timespec(tv_sec: Int(mountedAt.timeIntervalSince1970), tv_nsec: 0)
            st.pointee.st_mtim = now
            st.pointee.st_ctim = now
            st.pointee.st_atim = now
            st.pointee.st_nlink = 1
            switch node {
            case .root, .snapshotsDirectory, .snapshotRoot:
                st.pointee.st_mode = S_IFDIR | 0o555
                st.pointee.st_nlink = 2
            case .latestLink(let target):
                st.pointee.st_mode = S_IFLNK | 0o777
                st.pointee.st_size = off_t(target.utf8.count)
            case .entry(_, let e):
                let type: mode_t = switch e.type {
                case .directory: S_IFDIR
                case .symlink: S_IFLNK
                case .fifo: S_IFIFO
                case .socket: S_IFSOCK
                case .characterDevice: S_IFCHR
                case .blockDevice: S_IFBLK
                case .file, .hardlink: S_IFREG
                }
                st.pointee.st_mode = type | mode_t(e.mode & 0o7777)
                st.pointee.st_uid = e.uid
                st.pointee.st_gid = e.gid
                st.pointee.st_size = off_t(e.type == .symlink ? UInt64(e.target.count) : e.size)
                st.pointee.st_blocks = blkcnt_t((e.size + 511) / 512)
                st.pointee.st_rdev = dev_t(e.rdev)
                let t = timespec(tv_sec: Int(e.mtimeNanoseconds / 1_000_000_000), tv_nsec: Int(e.mtimeNanoseconds % 1_000_000_000))
                st.pointee.st_mtim = t
                st.pointee.st_ctim = t
                st.pointee.st_atim = t
            }
            return 0
        } catch {
            report(error)
            return -EIO
        }
    }

    /// What made a call fail with EIO, on standard error (the journal, under systemd).
    static func report(_ error: any Error) {
        writeStandardError("fbk mount: \(error)\n".terminalSafe)
    }

    static func readlink(_ path: String) -> String? {
        guard let fs = filesystem, let node = try? fs.node(path) else { return nil }
        switch node {
        case .latestLink(let target): return target
        case .entry(_, let e) where e.type == .symlink: return String(decoding: e.target, as: UTF8.self)
        default: return nil
        }
    }
}
