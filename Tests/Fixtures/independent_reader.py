#!/usr/bin/python3
"""An independent reader of fbk repositories, written from FORMAT.md only:
Python's standard library, its cryptography package (AES-GCM) and the
openssl and zstd command-line tools.
It restores the file contents, directories and symbolic links of a
snapshot, checking every chunk's HMAC with the escrowed client secret.

Usage: independent_reader.py STORAGE_ROOT CLIENT PRIVATE_KEY PASSPHRASE TARGET [SNAPSHOT_ID]
"""
import hashlib
import hmac
import json
import os
import struct
import subprocess
import sys

root, client, key, passphrase, target = sys.argv[1:6]
wanted = sys.argv[6] if len(sys.argv) > 6 else None
base = os.path.join(root, client)


def decrypt(path):
    """FORMAT.md 5.2: any CMS reader opens an object."""
    return subprocess.run(
        ["openssl", "cms", "-decrypt", "-binary", "-inform", "DER", "-in", path,
         "-inkey", key, "-passin", "pass:" + passphrase],
        check=True, stdout=subprocess.PIPE).stdout


def signed_json(data):
    """FORMAT.md 6: a JSON line, then the signature line."""
    body, signature, rest = data.split(b"\n")
    assert signature.startswith(b"ed25519 ") and rest == b""
    return json.loads(body)


# FORMAT.md 3: chunk IDs are HMAC-SHA256 under a key derived from the client secret.
secret = bytes.fromhex(decrypt(os.path.join(base, "keys/client-secret.cms")).decode().strip())
chunk_key = hmac.new(secret, b"fbk chunk id v1", hashlib.sha256).digest()

records = []
for name in sorted(os.listdir(os.path.join(base, "snapshots"))):
    if name.endswith(".snapshot"):
        records.append(signed_json(decrypt(os.path.join(base, "snapshots", name))))
record = [r for r in records if r["id"] == wanted][0] if wanted else records[-1]

listing_key = hmac.new(secret, b"fbk listing key v1", hashlib.sha256).digest()


def listing_packs(r):
    """FORMAT.md 6: a format-2 record names its pack listing, an AES-256-GCM
    box under the listing key holding one zstd frame of JSON."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    named = r["listing"]
    assert named["path"] == "snapshots/%s.listing" % r["id"]
    with open(os.path.join(base, named["path"]), "rb") as f:
        data = f.read()
    assert len(data) == named["size"] and hashlib.sha256(data).hexdigest() == named["sha256"]
    assert data[:8] == b"FBKLST02"
    frame = AESGCM(listing_key).decrypt(data[8:20], data[20:], data[:8] + named["path"].encode())
    text = subprocess.run(["zstd", "-d", "-c", "-q"], input=frame, check=True, stdout=subprocess.PIPE).stdout
    listing = json.loads(text)
    assert listing["client"] == r["client"] and listing["snapshot"] == r["id"] and listing["root"] == r["root"]
    return listing["packs"]


# FORMAT.md 6: each record lists (format 1) or names the listing of (format 2)
# the packs its run created and their chunks.
chunk_pack = {}
for r in records:
    for pack in (listing_packs(r) if r["format"] == 2 else r.get("new_packs", [])):
        for chunk_id, _kind, _length in pack["chunks"]:
            chunk_pack[chunk_id] = pack["path"]

packs = {}


def pack_entries(path):
    """FORMAT.md 4: magic, blobs, table of 50-byte entries, 16-byte trailer."""
    if path not in packs:
        data = decrypt(os.path.join(base, path))
        assert data[:8] == b"FBKPACK1" and data[-4:] == b"FBKT"
        count, table = struct.unpack("<IQ", data[-16:-4])
        entries = {}
        for i in range(count):
            e = data[table + 50 * i: table + 50 * (i + 1)]
            cid, kind, form, offset, stored, plain = struct.unpack("<32sBBQII", e)
            entries[cid.hex()] = (kind, form, data[offset:offset + stored], plain)
        packs[path] = entries
    return packs[path]


def chunk(cid):
    kind, form, stored, plain = pack_entries(chunk_pack[cid])[cid]
    if form == 1:  # FORMAT.md 5.1: one zstd frame
        stored = subprocess.run(["zstd", "-d", "-c", "-q"], input=stored, check=True, stdout=subprocess.PIPE).stdout
    assert len(stored) == plain
    assert hmac.new(chunk_key, stored, hashlib.sha256).hexdigest() == cid, "chunk does not match its ID"
    return kind, stored


def tree_entries(tree_id):
    """FORMAT.md 7: a tree, or a tree of parts whose trees are joined."""
    kind, data = chunk(tree_id)
    assert kind == 1
    if data[:8] == b"FBKTREEP":
        (n,) = struct.unpack("<I", data[8:12])
        assert len(data) == 12 + 32 * n
        entries = []
        for i in range(n):
            entries += tree_entries(data[12 + 32 * i: 44 + 32 * i].hex())
        return entries
    return parse_tree(data)


def parse_tree(data):
    """FORMAT.md 7."""
    assert data[:8] == b"FBKTREE1"
    pos = 8

    def take(n):
        nonlocal pos
        out = data[pos:pos + n]
        pos += n
        return out

    def u(fmt):
        return struct.unpack("<" + fmt, take(struct.calcsize("<" + fmt)))[0]

    entries = []
    for _ in range(u("I")):
        e = {"name": take(u("H")), "type": u("B"), "mode": u("I")}
        u("I"), u("I")            # uid, gid
        take(u("H")), take(u("H"))  # user, group
        e["mtime"] = u("q")
        u("q")                    # ctime
        e["size"] = u("Q")
        for _ in range(u("H")):
            take(u("H")), take(u("I"))
        if e["type"] == 1:
            e["regions"] = []
            for _ in range(u("I")):
                offset, length, n = u("Q"), u("Q"), u("I")
                e["regions"].append((offset, length, [take(32).hex() for _ in range(n)]))
        elif e["type"] == 2:
            e["subtree"] = take(32).hex()
        elif e["type"] in (3, 4):
            e["target"] = take(u("I"))
        elif e["type"] in (7, 8):
            u("Q")
        entries.append(e)
    assert pos == len(data)
    return entries


def restore(tree_id, directory):
    os.makedirs(directory, exist_ok=True)
    for e in tree_entries(tree_id):
        path = os.path.join(directory, e["name"])
        if e["type"] == 2:
            restore(e["subtree"], path)
        elif e["type"] == 1:
            with open(path, "wb") as f:
                for offset, _length, ids in e["regions"]:
                    f.seek(offset)
                    for cid in ids:
                        f.write(chunk(cid)[1])
                f.truncate(e["size"])
        elif e["type"] == 3:
            os.symlink(e["target"], path)
        elif e["type"] == 4:
            os.link(os.path.join(os.fsencode(target), e["target"]), path)


restore(record["root"], os.fsencode(target))
print("restored", record["id"])
