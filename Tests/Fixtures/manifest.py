#!/usr/bin/python3
"""Prints a manifest of a directory tree: one line per entry with its type,
mode, owner, size, mtime, content hash, link target, xattrs and hardlink
group. Written independently of fbk, so comparing the manifests of a
source tree and of its restore checks fbk against something that does not
share its code.

Usage: manifest.py ROOT [--no-owner] [--no-dir-mtime] [--content-only]
"""
import hashlib
import os
import stat
import sys


def main():
    root = os.fsencode(sys.argv[1])
    owner = "--no-owner" not in sys.argv
    dir_mtime = "--no-dir-mtime" not in sys.argv
    content_only = "--content-only" in sys.argv
    inodes = {}
    lines = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames) + sorted(filenames):
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            st = os.lstat(path)
            kind = stat.S_IFMT(st.st_mode)
            if content_only:
                if stat.S_ISREG(kind):
                    with open(path, "rb") as f:
                        lines.append("%r file %d %s" % (rel, st.st_size, hashlib.sha256(f.read()).hexdigest()))
                elif stat.S_ISDIR(kind):
                    lines.append("%r dir" % (rel,))
                elif stat.S_ISLNK(kind):
                    lines.append("%r symlink %r" % (rel, os.readlink(path)))
                continue
            fields = [repr(rel), oct(stat.S_IMODE(st.st_mode))]
            if owner:
                fields += [str(st.st_uid), str(st.st_gid)]
            if stat.S_ISREG(kind):
                h = hashlib.sha256()
                with open(path, "rb") as f:
                    for block in iter(lambda: f.read(1 << 20), b""):
                        h.update(block)
                key = (st.st_dev, st.st_ino)
                group = inodes.setdefault(key, rel) if st.st_nlink > 1 else None
                fields += ["file", str(st.st_size), h.hexdigest(), str(st.st_mtime_ns),
                           "link-group=" + repr(group) if group else ""]
            elif stat.S_ISDIR(kind):
                fields += ["dir", str(st.st_mtime_ns) if dir_mtime else ""]
            elif stat.S_ISLNK(kind):
                fields += ["symlink", repr(os.readlink(path)), str(st.st_mtime_ns)]
            elif stat.S_ISFIFO(kind):
                fields += ["fifo", str(st.st_mtime_ns)]
            else:
                fields += ["other", str(st.st_rdev)]
            if not stat.S_ISLNK(kind):
                try:
                    xattrs = sorted((n, os.getxattr(path, n)) for n in os.listxattr(path))
                except OSError:
                    xattrs = []
                fields.append("xattrs=" + repr(xattrs))
            lines.append(" ".join(fields))
    sys.stdout.write("\n".join(lines) + "\n")


main()
