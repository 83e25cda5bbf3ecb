#!/usr/bin/python3
"""An attacker's forger of fbk repository objects, written from FORMAT.md only
(sections 2-7, 13): Python's standard library, its cryptography package
(AES-GCM, Ed25519) and the openssl and zstd command-line tools.

It writes into a client's directory of a mirror's storage root as whoever
FORMAT.md 13 says may try it: a hostile server (anything goes) or a
compromised client holding the client secret (it can only add objects:
those scenarios create new files and never change or remove one). The tests
then check that fbk refuses what it must.

Usage: forge.py SCENARIO --dir CLIENT_DIR --client NAME --recipient CERT.pem
                [--secret SECRET_FILE] [options]
Each scenario prints one line of JSON: what it made and the paths it wrote
(relative to CLIENT_DIR).

Scenarios:
  poison-listing --secret F [--claim missing|PACKPATH]
      compromised client: a snapshot older than every genuine one, on the
      newest genuine root, whose listing puts every chunk of the genuine
      listings in one pack (a missing one, or PACKPATH); its catalog names
      only packs that exist, so a key-less check sees it complete.
  unsigned-record [--delete-escrow] [--file NAME=TEXT ...] [--time T]
      hostile server: a newest snapshot under a random secret whose record
      and catalog carry random bytes for signatures; its root holds the
      given files (default planted.txt=owned); optionally deletes the escrow.
  swap-escrow [--file NAME=TEXT ...] [--hostile-entries] [--time T]
      hostile server: replaces the escrowed secret with its own and writes a
      snapshot validly signed under it; --hostile-entries adds a setuid root
      file, a character device 1:3, a file with a cap_setuid=ep capability
      and a setgid file.
  claim-packs --secret F [--time T]
      compromised client: a snapshot whose listing claims every genuine pack
      holds one bogus chunk (its catalog lists them all, so it checks
      complete); dated T, and with its catalog's file time set back, it is
      the first word a reader meets on every pack.
  tree-bomb --secret F [--depth N] [--claim-files N] [--time T]
      compromised client: trees where level k holds `a` and `b`, both the
      level k-1 tree, over one file `leaf`: 2^N paths from N+2 chunks, with
      stats claiming a tiny snapshot.
  future-record --secret F [--year Y]
      compromised client: a snapshot dated in year Y on the newest genuine
      root, adding no pack, so `latest` picks it and keeps picking it.
  pack-variant --secret F --pack PACKPATH --mode lacks|wrong --out FILE
      a pack to put under the name of the genuine PACKPATH: `lacks` holds
      one unrelated valid chunk, `wrong` holds every chunk the listings put
      in PACKPATH with random content (IDs and lengths right, HMACs wrong).
"""
import argparse
import datetime
import hashlib
import hmac
import json
import os
import secrets
import struct
import subprocess
import sys
import tempfile

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

CHUNKER = {"min": 262144, "avg": 1048576, "max": 8388608, "window": 64}
MISSING_PACK = "packs/00/" + "0" * 64 + ".pack"
FILE, DIRECTORY, CHARDEV = 1, 2, 7
DATA, TREE = 0, 1


# --- keys (FORMAT.md 3) ---------------------------------------------------

class Keys:
    """The keys a 32-byte client secret derives."""

    def __init__(self, secret):
        assert len(secret) == 32
        self.secret = secret
        derive = lambda label: hmac.new(secret, label, hashlib.sha256).digest()
        self.chunk_key = derive(b"fbk chunk id v1")
        self.listing_key = derive(b"fbk listing key v1")
        self.signing = Ed25519PrivateKey.from_private_bytes(derive(b"fbk signing key v1"))
        self.public_hex = self.signing.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()

    @classmethod
    def from_file(cls, path):
        with open(path) as f:
            return cls(bytes.fromhex(f.read().strip()))

    def chunk_id(self, data):
        return hmac.new(self.chunk_key, data, hashlib.sha256).digest()


# --- sealing and signing (FORMAT.md 5.2, 6) -------------------------------

def seal(plain, cert):
    """One CMS AuthEnvelopedData, AES-256-GCM, to the operator's certificate:
    what anyone holding only the public certificate can make."""
    with tempfile.TemporaryDirectory() as tmp:
        src, out = os.path.join(tmp, "plain"), os.path.join(tmp, "sealed")
        with open(src, "wb") as f:
            f.write(plain)
        subprocess.run(["openssl", "cms", "-encrypt", "-binary", "-aes-256-gcm", "-outform", "DER",
                        "-in", src, "-out", out, cert], check=True)
        with open(out, "rb") as f:
            return f.read()


def canonical_json(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign_document(obj, keys=None):
    """A signed document; without keys the signature line is 64 random bytes,
    well-formed but verifying under no key (a server has none to sign with)."""
    body = canonical_json(obj)
    signature = keys.signing.sign(body) if keys else secrets.token_bytes(64)
    return body + b"\ned25519 " + signature.hex().encode() + b"\n"


def zstd(data):
    return subprocess.run(["zstd", "-q", "-c"], input=data, check=True, stdout=subprocess.PIPE).stdout


def unzstd(data):
    return subprocess.run(["zstd", "-d", "-q", "-c"], input=data, check=True, stdout=subprocess.PIPE).stdout


# --- listings (FORMAT.md 6) -----------------------------------------------

def seal_listing(document, path, keys):
    """FBKLST02: nonce, then AES-GCM of a zstd frame, bound to its path."""
    magic, nonce = b"FBKLST02", secrets.token_bytes(12)
    return magic + nonce + AESGCM(keys.listing_key).encrypt(nonce, zstd(canonical_json(document)), magic + path.encode())


def read_listing(path, secret):
    """A genuine listing's JSON, opened with the client secret (the one thing
    a compromised client can read of its past backups)."""
    with open(path, "rb") as f:
        data = f.read()
    magic = data[:8]
    aad = magic + ("snapshots/" + os.path.basename(path)).encode()
    plain = AESGCM(Keys(secret).listing_key).decrypt(data[8:20], data[20:], aad)
    return json.loads(unzstd(plain) if magic == b"FBKLST02" else plain)


def genuine_listings(cdir, keys):
    """Every listing in the directory that opens under the secret, by snapshot ID."""
    out, snapshots = {}, os.path.join(cdir, "snapshots")
    for name in sorted(os.listdir(snapshots)):
        if name.endswith(".listing"):
            try:
                out[name[:-len(".listing")]] = read_listing(os.path.join(snapshots, name), keys.secret)
            except Exception:
                pass  # not this client's: someone else's forgery
    if not out:
        sys.exit("no listing in %s opens with this secret" % snapshots)
    return out


# --- packs (FORMAT.md 4) --------------------------------------------------

def unique(chunks):
    """First occurrence of each chunk ID: a table and a listing name a chunk once."""
    seen = set()
    return [c for c in chunks if not (c[0] in seen or seen.add(c[0]))]


def make_pack(chunks, cert):
    """chunks: [(id bytes, kind, plaintext)], stored uncompressed (form 0).
    Returns the sealed bytes and the pack's path, named by their SHA-256."""
    body, table, chunks = bytearray(b"FBKPACK1"), bytearray(), unique(chunks)
    for cid, kind, data in chunks:
        table += struct.pack("<32sBBQII", cid, kind, 0, len(body), len(data), len(data))
        body += data
    plain = bytes(body + table + struct.pack("<IQ", len(chunks), len(body)) + b"FBKT")
    sealed = seal(plain, cert)
    name = hashlib.sha256(sealed).hexdigest()
    return sealed, "packs/%s/%s.pack" % (name[:2], name)


# --- trees (FORMAT.md 7) --------------------------------------------------

def lp(fmt, data):
    """A length-prefixed byte string."""
    return struct.pack("<" + fmt, len(data)) + data


def entry(name, kind, payload=b"", mode=0o644, uid=0, gid=0, size=0, mtime=0, xattrs=()):
    """(name bytes, serialized entry) for make_tree; user and group names are
    empty (a forger needs none) and ctime is mtime."""
    out = lp("H", name.encode()) + struct.pack("<BIII", kind, mode, uid, gid) + lp("H", b"") + lp("H", b"")
    out += struct.pack("<qqQH", mtime, mtime, size, len(xattrs))
    for xname, value in xattrs:
        out += lp("H", xname.encode()) + lp("I", value)
    return (name.encode(), out + payload)


def file_payload(ids_and_lengths):
    """Regions of a file stored without holes: one region of all its chunks."""
    ids = [cid for cid, _ in ids_and_lengths]
    if not ids:
        return struct.pack("<I", 0)
    total = sum(length for _, length in ids_and_lengths)
    return struct.pack("<IQQI", 1, 0, total, len(ids)) + b"".join(ids)


def make_tree(entries):
    """FBKTREE1 of entries made by entry(), sorted by name bytes."""
    entries = sorted(entries)
    return b"FBKTREE1" + struct.pack("<I", len(entries)) + b"".join(e for _, e in entries)


# --- snapshots (FORMAT.md 2, 6) -------------------------------------------

def snapshot_id(when):
    return when.strftime("%Y%m%dT%H%M%SZ-") + secrets.token_hex(8)


def rfc3339(when):
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (when.microsecond // 1000)


def described(cdir, path):
    """{path, size, sha256} of an object as it is stored."""
    with open(os.path.join(cdir, path), "rb") as f:
        data = f.read()
    return {"path": path, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def put(cdir, path, data, replace=False):
    """Stores an object; a client can only create (nginx refuses overwrites)."""
    full = os.path.join(cdir, path)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, "wb" if replace else "xb") as f:
        f.write(data)
    return path


def write_snapshot(cdir, client, cert, keys, sid, when, root, listed, catalog_packs, stats,
                   signed=True, added_bytes=0, paths=("/",), host=None):
    """Listing, record, then catalog (the commit marker, FORMAT.md 6).
    listed: [(pack path, [[hex ID, kind, length], ...])] for the listing;
    catalog_packs: pack paths present in cdir. Unsigned: random signatures."""
    signer = keys if signed else None
    listing_path, record_path = "snapshots/%s.listing" % sid, "snapshots/%s.snapshot" % sid
    listing = {"client": client, "format": 2, "root": root, "snapshot": sid,
               "packs": [{"chunks": chunks, "path": path} for path, chunks in listed]}
    put(cdir, listing_path, seal_listing(listing, listing_path, keys))
    record = {"format": 2, "id": sid, "client": client, "host": host or client,
              "started": rfc3339(when), "finished": rfc3339(when), "paths": list(paths),
              "root": root, "chunker": CHUNKER, "signing_key": keys.public_hex,
              "listing": described(cdir, listing_path),
              "stats": dict({"files": 0, "directories": 0, "other_entries": 0, "bytes": 0,
                             "new_chunks": 0, "new_bytes": 0, "packs": 0}, **stats)}
    put(cdir, record_path, seal(sign_document(record, signer), cert))
    catalog = {"format": 1, "client": client, "snapshot": sid, "created": rfc3339(when),
               "record": described(cdir, record_path), "listing": described(cdir, listing_path),
               "packs": [described(cdir, p) for p in sorted(set(catalog_packs))],
               "added_bytes": added_bytes, "signing_key": keys.public_hex}
    catalog_path = put(cdir, "snapshots/%s.catalog" % sid, sign_document(catalog, signer))
    return [listing_path, record_path, catalog_path]


def store_snapshot(args, keys, root, chunks, stats, signed=True):
    """One new pack of `chunks` and a snapshot at --time needing only it."""
    sealed, pack = make_pack(chunks, args.recipient)
    put(args.dir, pack, sealed)
    listed = [(pack, [[cid.hex(), kind, len(data)] for cid, kind, data in unique(chunks)])]
    stats = dict(stats, new_chunks=len(listed[0][1]), new_bytes=len(sealed), packs=1)
    sid = snapshot_id(args.time)
    wrote = write_snapshot(args.dir, args.client, args.recipient, keys, sid, args.time, root.hex(), listed,
                           [pack], stats, signed=signed, added_bytes=len(sealed))
    return {"snapshot": sid, "pack": pack, "root": root.hex(), "wrote": [pack] + wrote}


def genuine_packs(cdir):
    """Every pack object in the directory (the checker's view needs no key)."""
    top = os.path.join(cdir, "packs")
    return sorted("packs/%s/%s" % (d, n) for d in os.listdir(top) for n in os.listdir(os.path.join(top, d))
                  if n.endswith(".pack"))


# --- scenarios ------------------------------------------------------------

def poison_listing(args, keys):
    listings = genuine_listings(args.dir, keys)
    chunks = {}
    for listing in listings.values():
        for pack in listing["packs"]:
            for cid, kind, length in pack["chunks"]:
                chunks[cid] = [cid, kind, length]
    # Older than everything: FORMAT.md does not say which of two listings'
    # claims on a chunk wins, and a reader going in ID order meets this first.
    when = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
    sid = snapshot_id(when)
    claim = MISSING_PACK if args.claim == "missing" else args.claim
    wrote = write_snapshot(args.dir, args.client, args.recipient, keys, sid, when, listings[max(listings)]["root"],
                           [(claim, sorted(chunks.values()))], genuine_packs(args.dir),
                           {"new_chunks": len(chunks), "packs": 1})
    return {"snapshot": sid, "claim": claim, "chunks": len(chunks), "wrote": wrote}


def planted_entries(args, keys, hostile):
    """Root entries and their chunks: the --file files and, if hostile,
    entries that a restore run as root turns into privilege."""
    entries, chunks, sizes = [], [], []

    def add_file(name, content, mode=0o644, xattrs=()):
        cid = keys.chunk_id(content)
        if content:
            chunks.append((cid, DATA, content))
        sizes.append(len(content))
        payload = file_payload([(cid, len(content))] if content else [])
        entries.append(entry(name, FILE, payload, mode, size=len(content), mtime=args.mtime, xattrs=xattrs))

    # Names go in as given: a test may try "../x" or "a/b", which FORMAT.md 7 forbids.
    for spec in args.file or ["planted.txt=owned"]:
        name, _, text = spec.partition("=")
        add_file(name, text.encode())
    other = 0
    if hostile:
        add_file("suid", b"#!/bin/sh\n", 0o4777)
        add_file("sgid", b"#!/bin/sh\n", 0o2755)
        # struct vfs_cap_data, revision 2 with the effective flag:
        # magic_etc, then (permitted, inheritable) for capabilities 0-31 and 32-63.
        cap = struct.pack("<IIIII", 0x02000001, 1 << 7, 0, 0, 0)  # CAP_SETUID = 7
        add_file("capfile", b"#!/bin/sh\n", 0o755, [("security.capability", cap)])
        # glibc's makedev(1, 3) (/dev/null); the kernel's old encoding agrees for small numbers.
        major, minor = 1, 3
        rdev = ((major & 0xfffff000) << 32) | ((major & 0xfff) << 8) | ((minor & 0xffffff00) << 12) | (minor & 0xff)
        entries.append(entry("null2", CHARDEV, struct.pack("<Q", rdev), 0o666, mtime=args.mtime))
        other = 1
    tree = make_tree(entries)
    root = keys.chunk_id(tree)
    stats = {"files": len(sizes), "directories": 0, "other_entries": other, "bytes": sum(sizes)}
    return root, chunks + [(root, TREE, tree)], stats


def unsigned_record(args, _keys):
    keys = Keys(secrets.token_bytes(32))
    root, chunks, stats = planted_entries(args, keys, hostile=False)
    out = store_snapshot(args, keys, root, chunks, stats, signed=False)
    if args.delete_escrow:
        os.remove(os.path.join(args.dir, "keys/client-secret.cms"))
        out["deleted"] = ["keys/client-secret.cms"]
    return out


def swap_escrow(args, _keys):
    secret = secrets.token_bytes(32)
    keys = Keys(secret)
    put(args.dir, "keys/client-secret.cms", seal(secret.hex().encode() + b"\n", args.recipient), replace=True)
    root, chunks, stats = planted_entries(args, keys, hostile=args.hostile_entries)
    out = store_snapshot(args, keys, root, chunks, stats)
    out["attacker_secret"] = secret.hex()
    out["wrote"].append("keys/client-secret.cms")
    return out


def tree_bomb(args, keys):
    leaf = b"leaf\n"
    level = make_tree([entry("leaf", FILE, file_payload([(keys.chunk_id(leaf), len(leaf))]), size=len(leaf),
                             mtime=args.mtime)])
    chunks = [(keys.chunk_id(leaf), DATA, leaf), (keys.chunk_id(level), TREE, level)]
    for _ in range(args.depth):
        below = keys.chunk_id(level)
        level = make_tree([entry(n, DIRECTORY, below, 0o755, mtime=args.mtime) for n in ("a", "b")])
        chunks.append((keys.chunk_id(level), TREE, level))
    out = store_snapshot(args, keys, keys.chunk_id(level), chunks,
                         {"files": args.claim_files, "directories": args.claim_files, "other_entries": 0, "bytes": len(leaf)})
    out["depth"] = args.depth
    return out


def future_record(args, keys):
    listings = genuine_listings(args.dir, keys)
    sid_genuine = max(listings)
    listing = listings[sid_genuine]
    with open(os.path.join(args.dir, "snapshots/%s.catalog" % sid_genuine), "rb") as f:
        genuine_catalog = json.loads(f.read().split(b"\n")[0])
    when = datetime.datetime(args.year, 1, 1, tzinfo=datetime.timezone.utc)
    sid = snapshot_id(when)
    wrote = write_snapshot(args.dir, args.client, args.recipient, keys, sid, when, listing["root"], [],
                           [p["path"] for p in genuine_catalog["packs"]], {})
    return {"snapshot": sid, "root": listing["root"], "wrote": wrote}


def pack_variant(args, keys):
    if args.mode == "lacks":
        data = secrets.token_bytes(4096)
        chunks = [(keys.chunk_id(data), DATA, data)]
    else:
        listed = {}
        for listing in genuine_listings(args.dir, keys).values():
            for pack in listing["packs"]:
                if pack["path"] == args.pack:
                    listed.update((cid, (kind, length)) for cid, kind, length in pack["chunks"])
        if not listed:
            sys.exit("no genuine listing puts a chunk in %s" % args.pack)
        chunks = [(bytes.fromhex(cid), kind, secrets.token_bytes(length)) for cid, (kind, length) in listed.items()]
    sealed, _ = make_pack(chunks, args.recipient)
    with open(args.out, "wb") as f:
        f.write(sealed)
    return {"out": args.out, "chunks": len(chunks)}


def claim_packs(args, keys):
    """compromised client: a snapshot whose catalog lists every genuine pack
    and whose listing claims each of them holds only one bogus chunk. With
    --time in the past and its catalog's file time set back by a hostile
    server, it is the first listing a reader meets for every pack."""
    listings = genuine_listings(args.dir, keys)
    packs = genuine_packs(args.dir)
    bogus = secrets.token_bytes(32).hex()
    sid = snapshot_id(args.time)
    wrote = write_snapshot(args.dir, args.client, args.recipient, keys, sid, args.time, listings[max(listings)]["root"],
                           [(p, [[bogus, 0, 10]]) for p in packs], packs, {"files": 100, "directories": 100})
    return {"snapshot": sid, "claimed": packs, "wrote": wrote}


SCENARIOS = {"claim-packs": (claim_packs, True), "poison-listing": (poison_listing, True), "unsigned-record": (unsigned_record, False),
             "swap-escrow": (swap_escrow, False), "tree-bomb": (tree_bomb, True),
             "future-record": (future_record, True), "pack-variant": (pack_variant, True)}


def main():
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--dir", required=True, help="the client's directory in a storage root")
    common.add_argument("--client", required=True)
    common.add_argument("--recipient", required=True, help="the operator's certificate (PEM)")
    common.add_argument("--secret", help="the client secret file (a compromised client's)")
    common.add_argument("--time", type=datetime.datetime.fromisoformat,
                        help="time of a new snapshot of unsigned-record, swap-escrow or tree-bomb, RFC 3339 "
                             "(default: now; a server's forgeries: now + 1 min)")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="scenario", required=True)
    sub.add_parser("poison-listing", parents=[common]).add_argument("--claim", default="missing")
    for name in ("unsigned-record", "swap-escrow"):
        p = sub.add_parser(name, parents=[common])
        p.add_argument("--file", action="append", metavar="NAME=TEXT")
    sub.choices["unsigned-record"].add_argument("--delete-escrow", action="store_true")
    sub.choices["swap-escrow"].add_argument("--hostile-entries", action="store_true")
    sub.add_parser("claim-packs", parents=[common])
    p = sub.add_parser("tree-bomb", parents=[common])
    p.add_argument("--depth", type=int, default=40)
    p.add_argument("--claim-files", type=int, default=1, help="what its signed stats claim (files, and as many directories)")
    sub.add_parser("future-record", parents=[common]).add_argument("--year", type=int, default=2999)
    p = sub.add_parser("pack-variant", parents=[common])
    p.add_argument("--pack", required=True)
    p.add_argument("--mode", choices=["lacks", "wrong"], required=True)
    p.add_argument("--out", required=True)
    args = parser.parse_args()

    run, needs_secret = SCENARIOS[args.scenario]
    if needs_secret and not args.secret:
        parser.error("%s needs --secret" % args.scenario)
    now = datetime.datetime.now(datetime.timezone.utc)
    if args.time is None:
        # A server's forgery must be the newest, even beside a snapshot of this second.
        args.time = now + datetime.timedelta(minutes=1) if not needs_secret else now
    elif args.time.tzinfo is None:
        args.time = args.time.replace(tzinfo=datetime.timezone.utc)
    args.mtime = int(args.time.timestamp()) * 10**9
    keys = Keys.from_file(args.secret) if args.secret else None
    print(json.dumps(run(args, keys), sort_keys=True))


if __name__ == "__main__":
    main()
