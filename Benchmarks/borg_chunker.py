#!/usr/bin/python3
"""Times BorgBackup's C buzhash chunker on a file held in memory.

Usage: borg_chunker.py FILE [REPEATS]

Runs borg.chunker.Chunker with borg's default parameters (19, 23, 21, 4095)
over the file's bytes, best of REPEATS, and prints MiB/s, chunk count and
mean chunk size in the same shape as fbk-bench. Used by compare-borg.sh so
both chunkers see the same bytes in the same run.
"""
import io
import sys
import time

from borg.chunker import Chunker

path = sys.argv[1]
repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 3
data = open(path, "rb").read()
best = float("inf")
count = 0
for _ in range(repeats):
    chunker = Chunker(0, 19, 23, 21, 4095)
    t0 = time.perf_counter()
    count = 0
    for _chunk in chunker.chunkify(io.BytesIO(data)):
        count += 1
    best = min(best, time.perf_counter() - t0)
mib = len(data) / 1048576
import borg
print("%-44s %8.1f MiB/s  %6.2f GiB/s  %6d chunks  mean %9.0f B" % (
    "borg %s buzhash 19,23,21,4095" % borg.__version__, mib / best, mib / best / 1024,
    count, len(data) / max(count, 1)))
