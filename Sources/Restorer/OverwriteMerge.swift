// `fbk restore --overwrite`: putting a snapshot back over a tree that is
// still there (/etc on a machine that runs). The restore itself is the
// ordinary one, into an empty staging directory inside the target (so on
// its file system); then the staged tree is moved into place:
//   - an entry the target lacks is renamed in;
//   - a regular file whose size, modification time, mode, owner and bytes
//     match is left as it is (the staged copy is dropped);
//   - any other entry is replaced: a file or link by one rename, anything
//     in the way of a directory (a file, a link) removed first;
//   - with `delete`, what the target holds below a restored path and the
//     snapshot lacks is removed.
// Every step goes through directory descriptors opened with O_NOFOLLOW,
// and every name is taken with AT_SYMLINK_NOFOLLOW: a link planted in the
// target, where the snapshot has a directory, is removed, never followed.

import FoundationEssentials
import Glibc
import Platform

struct OverwriteMerge {
    /// Entries left as they were, replaced, added and removed.
    var kept = 0, replaced = 0, added = 0, removed = 0
    var warnings: [String] = []

    /// Moves everything under the directory `staged` (open) into `target`
    /// (open). `relative` is the directories' path in the snapshot;
    /// `restored` says whether a path was restored whole (its own entry is
    /// the snapshot's: a directory only on the way to chosen paths is not,
    /// and keeps the target's mode and times); `delete`: remove what the
    /// snapshot lacks inside directories restored whole.
    mutating func merge(staged: Int32, into target: Int32, relative: String, skip: String?, delete: Bool,
                        restored: (String) -> Bool) {
        let deleting = delete && restored(relative)
        let names = Self.names(staged)
        for name in names {
            let path = relative.isEmpty ? name : relative + "/" + name
            var s = stat(), t = stat()
            guard fstatat(staged, name, &s, AT_SYMLINK_NOFOLLOW) == 0 else { continue }
            let exists = fstatat(target, name, &t, AT_SYMLINK_NOFOLLOW) == 0
            let stagedIsDir = s.st_mode & S_IFMT == S_IFDIR
            if exists && stagedIsDir && t.st_mode & S_IFMT == S_IFDIR {
                let from = openat(staged, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                let to = openat(target, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                if from >= 0 && to >= 0 {
                    merge(staged: from, into: to, relative: path, skip: nil, delete: delete, restored: restored)
                    if restored(path) {
                        // The directory's own mode, owner and times, as restored.
                        _ = fchmod(to, s.st_mode & 0o7777)
                        if geteuid() == 0 { _ = fchown(to, s.st_uid, s.st_gid) }
                        var times = [s.st_atim, s.st_mtim]
                        _ = futimens(to, &times)
                    }
                } else {
                    warnings.append("\(path): cannot open: \(String(cString: strerror(errno)))")
                }
                if from >= 0 { close(from) }
                if to >= 0 { close(to) }
                continue
            }
            if exists && s.st_mode & S_IFMT == S_IFREG && t.st_mode & S_IFMT == S_IFREG && Self.sameFile(staged, target, name, s, t) {
                kept += 1
                continue
            }
            if exists && (t.st_mode & S_IFMT == S_IFDIR || stagedIsDir) {
                // A directory where the snapshot has something else, or anything where it has a directory
                // (a rename cannot replace either): it goes first, a link as a link.
                guard Self.removeTree(target, name) else {
                    warnings.append("\(path): cannot remove the directory in the way: \(String(cString: strerror(errno)))")
                    continue
                }
            }
            if renameat(staged, name, target, name) == 0 {
                if exists { replaced += 1 } else { added += 1 }
            } else {
                warnings.append("\(path): cannot put in place: \(String(cString: strerror(errno)))")
            }
        }
        guard deleting else { return }
        let wanted = Set(names)
        for name in Self.names(target) where !wanted.contains(name) && name != skip {
            if Self.removeTree(target, name) { removed += 1 } else {
                warnings.append("\(relative.isEmpty ? name : relative + "/" + name): cannot remove: \(String(cString: strerror(errno)))")
            }
        }
    }

    /// The names in an open directory (without . and ..).
    static func names(_ directory: Int32) -> [String] {
        let fd = openat(directory, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0, let dir = fdopendir(fd) else { if fd >= 0 { close(fd) }; return [] }
        defer { closedir(dir) }
        var out: [String] = []
        while let e = readdir(dir) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { raw in String(cString: raw.bindMemory(to: CChar.self).baseAddress!) }
            if name != "." && name != ".." { out.append(name) }
        }
        return out.sorted()
    }

    /// Removes `name` in `directory`, a whole tree if it is one, never following a link.
    static func removeTree(_ directory: Int32, _ name: String) -> Bool {
        var st = stat()
        guard fstatat(directory, name, &st, AT_SYMLINK_NOFOLLOW) == 0 else { return errno == ENOENT }
        guard st.st_mode & S_IFMT == S_IFDIR else { return unlinkat(directory, name, 0) == 0 }
        let fd = openat(directory, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { return false }
        var ok = true
        for child in names(fd) where !removeTree(fd, child) { ok = false }
        close(fd)
        return ok && unlinkat(directory, name, AT_REMOVEDIR) == 0
    }

    /// Whether two regular files hold the same: size, mtime, mode, owner, then the bytes.
    static func sameFile(_ a: Int32, _ b: Int32, _ name: String, _ sa: stat, _ sb: stat) -> Bool {
        guard sa.st_size == sb.st_size, sa.st_mtim.tv_sec == sb.st_mtim.tv_sec, sa.st_mtim.tv_nsec == sb.st_mtim.tv_nsec,
              sa.st_mode == sb.st_mode, sa.st_uid == sb.st_uid, sa.st_gid == sb.st_gid else { return false }
        let fa = openat(a, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC), fb = openat(b, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        defer { if fa >= 0 { close(fa) }; if fb >= 0 { close(fb) } }
        guard fa >= 0, fb >= 0 else { return false }
        var x = [UInt8](repeating: 0, count: 1 << 16), y = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = read(fa, &x, x.count), m = read(fb, &y, y.count)
            if n != m || n < 0 { return false }
            if n == 0 { return true }
            if x[0..<n] != y[0..<m] { return false }
        }
    }
}
