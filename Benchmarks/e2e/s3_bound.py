#!/usr/bin/python3
"""The S3 goal's bound for one run, from that run's own chunks.

Usage: s3_bound.py CHANGES.json FBK SECRET

Issue #10: S3 may upload at most 1.1 x (the compressed size of the changed
data + one chunk per changed region). CHANGES.json is what
`dataset.py --change` printed: regions written inside existing files and
whole files written. The changed data is compressed as fbk compresses it
(zstd level 3, one frame per chunk); a changed region's chunk is the chunk,
cut as this client cuts (`fbk chunk --secret`), that holds the region's
first byte, also compressed. Prints JSON with the parts and the bound.
"""
import json
import subprocess
import sys

changes, fbk, secret = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3]


def compressed(data):
    """fbk stores a chunk as zstd level 3, or as is when that is not smaller."""
    frame = subprocess.run(["zstd", "-3", "-c", "-q", "--no-check"], input=data, check=True, stdout=subprocess.PIPE).stdout
    return min(len(frame), len(data))


def chunks(path):
    out = subprocess.run([fbk, "chunk", "--json", "--list", "--secret", secret, path], check=True, stdout=subprocess.PIPE).stdout
    return json.loads(out)["files"][0]["list"]


def read(path, offset, length):
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read(length)


changed = region_chunks = 0
cut = {}
for r in changes["regions"]:
    if r["path"] not in cut:
        cut[r["path"]] = chunks(r["path"])
    for offset, length in cut[r["path"]]:
        if offset <= r["offset"] < offset + length:
            region_chunks += compressed(read(r["path"], offset, length))
            break
    # The changed bytes themselves, a chunk at a time as fbk cuts them.
    for offset, length in cut[r["path"]]:
        start, end = max(offset, r["offset"]), min(offset + length, r["offset"] + r["length"])
        if start < end:
            changed += compressed(read(r["path"], start, end - start))
for path in changes["files"]:
    for offset, length in chunks(path):
        changed += compressed(read(path, offset, length))
print(json.dumps({"changed_compressed": changed, "region_chunks_compressed": region_chunks,
                  "regions": len(changes["regions"]), "bound": int(1.1 * (changed + region_chunks))}))
