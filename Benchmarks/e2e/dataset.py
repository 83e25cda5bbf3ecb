#!/usr/bin/python3
"""Generates the end-to-end benchmark dataset, reproducibly (seeded).

Usage: dataset.py DIR [SCALE]          create the tree (SCALE 1.0 is about 1.5 GB)
       dataset.py DIR [SCALE] --change apply the fixed change set (S3) and
                                       print what changed as JSON: regions
                                       inside existing files, and whole files
       dataset.py DIR [SCALE] --change --day N
                                       the same change set with day N's own
                                       random content (a day of a simulated
                                       month: Benchmarks/e2e/horizon.sh)

The tree: tens of thousands of small text/config files, shared libraries
(copied from /usr/lib), a growing log file, a disk-image-like file with
scattered in-place writes, and incompressible data.
"""
import os
import random
import shutil
import sys

root = sys.argv[1]
scale = float(sys.argv[2]) if len(sys.argv) > 2 and not sys.argv[2].startswith("--") else 1.0
change = "--change" in sys.argv
day = int(sys.argv[sys.argv.index("--day") + 1]) if "--day" in sys.argv else None
rng = random.Random(20261127 if day is None else 20261127 + 1000003 * (day + 1))
MiB = 1 << 20
WORDS = "server config user password listen port timeout cache backup mirror daily log error info debug".split()


def text(n):
    out = []
    size = 0
    while size < n:
        line = "%s = %s %d\n" % (rng.choice(WORDS), rng.choice(WORDS), rng.randrange(100000))
        out.append(line)
        size += len(line)
    return "".join(out).encode()


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


small_count = int(30000 * scale)
log_size = int(512 * MiB * scale)
image_size = int(256 * MiB * scale)
random_size = int(64 * MiB * scale)

if not change:
    for i in range(small_count):
        write(os.path.join(root, "etc", "d%03d" % (i % 300), "f%05d.conf" % i), text(rng.randrange(200, 4000)))
    libs = os.path.join(root, "lib")
    os.makedirs(libs, exist_ok=True)
    budget = int(400 * MiB * scale)
    for name in sorted(os.listdir("/usr/lib/x86_64-linux-gnu")):
        src = os.path.join("/usr/lib/x86_64-linux-gnu", name)
        if budget <= 0:
            break
        if os.path.isfile(src) and not os.path.islink(src) and ".so" in name:
            shutil.copyfile(src, os.path.join(libs, name))
            budget -= os.path.getsize(src)
    os.makedirs(os.path.join(root, "var", "log"), exist_ok=True)
    with open(os.path.join(root, "var", "log", "app.log"), "wb") as f:
        written = 0
        while written < log_size:
            block = text(MiB)
            f.write(block)
            written += len(block)
    with open(os.path.join(root, "disk.img"), "wb") as f:
        for i in range(image_size // MiB):
            f.write(bytes(MiB) if i % 3 == 0 else rng.randbytes(MiB // 2) + bytes(MiB // 2))
    write(os.path.join(root, "random", "blob.bin"), rng.randbytes(random_size))
else:
    # S3: append 8 MiB to the log, overwrite 4 KiB at 3 places in the image,
    # modify 200 small files, add 64 MiB of new random files, delete 100 files.
    regions, files = [], []
    log = os.path.join(root, "var", "log", "app.log")
    appended = text(8 * MiB)
    regions.append({"path": log, "offset": os.path.getsize(log), "length": len(appended)})
    with open(log, "ab") as f:
        f.write(appended)
    image = os.path.join(root, "disk.img")
    with open(image, "r+b") as f:
        for k in range(3):
            f.seek((k + 1) * image_size // 4)
            f.write(rng.randbytes(4096))
            regions.append({"path": image, "offset": (k + 1) * image_size // 4, "length": 4096})
    for i in range(200):
        files.append(os.path.join(root, "etc", "d%03d" % (i % 300), "f%05d.conf" % i))
        write(files[-1], text(1000))
    for i in range(16):
        files.append(os.path.join(root, "new", "n%02d.bin" % i))
        write(files[-1], rng.randbytes(4 * MiB))
    for i in range(200, 300):
        p = os.path.join(root, "etc", "d%03d" % (i % 300), "f%05d.conf" % i)
        if os.path.exists(p):
            os.remove(p)
    import json
    print(json.dumps({"regions": regions, "files": files}))
