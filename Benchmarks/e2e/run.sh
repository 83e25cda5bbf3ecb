#!/bin/sh
# End-to-end benchmark: fbk against restic and borg on the same dataset, in
# the same run (make bench-e2e). fbk uploads to two real nginx mirrors on
# loopback (deploy/nginx); restic and borg use local repositories.
#   S1 first snapshot, S2 rerun without change, S3 after a fixed change set,
#   S4 full restore (fbk from a mirror's storage directory).
# Figures: wall time, user+sys CPU, peak RSS (/usr/bin/time), bytes stored.
#   References in the same run: `tar | zstd -3 -T0` of the tree for S1
#   (reading and compressing it), `cp -a` of it for S4 (writing it); the
#   ratios to them and to restic are printed at the end and kept in RESULTS.
#   S5 no-change scan of 100,000 small files, beside `find -printf` reading
#      the same metadata (the stat()-bound rate).
# Usage: Benchmarks/e2e/run.sh [SCALE]   (1.0: about 1.5 GB)
#   FBK_BENCH_PEERS=0 leaves out restic and borg (e.g. for a 2x memory run);
#   FBK_BENCH_BINARY=PATH measures another fbk binary (an older build).
set -eu
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
SCALE=${1:-1.0}
FBK=${FBK_BENCH_BINARY:-$ROOT/.build/release/fbk}
WORK=$(mktemp -d "${FBK_BENCH_DIR:-/var/tmp}/fbk-e2e.XXXXXX")
RESULTS=${FBK_BENCH_RESULTS:-$ROOT/Benchmarks/e2e/results.json}
cleanup() {
  for p in "$WORK"/nginx*/nginx.pid; do [ -f "$p" ] && kill "$(cat "$p")" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
export RESTIC_PASSWORD=bench BORG_PASSPHRASE=bench BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes FBK_PASSPHRASE=bench

echo "== generating the dataset (scale $SCALE)"
python3 Benchmarks/e2e/dataset.py "$WORK/data" "$SCALE"
SIZE=$(du -sb "$WORK/data" | cut -f1)

. Benchmarks/e2e/lib.sh
P0=$(port)
P1=$(port)
start_nginx "$WORK/nginx0" "$P0"
start_nginx "$WORK/nginx1" "$P1"

"$FBK" keygen --out "$WORK/keys" --type p384 --allow-short-passphrase >/dev/null
printf 'bench-pw\n' > "$WORK/password"; chmod 600 "$WORK/password"
"$FBK" init --config "$WORK/fbk.conf" --client bench --recipient "$WORK/keys/recipient.pem" \
  --mirror "http://127.0.0.1:$P0/bench/" --mirror "http://127.0.0.1:$P1/bench/" \
  --password-file "$WORK/password" --state "$WORK/state" "$WORK/data" >/dev/null
PEERS=${FBK_BENCH_PEERS:-1}
HAVE_RESTIC=0; [ "$PEERS" = 1 ] && command -v restic >/dev/null && HAVE_RESTIC=1 && restic init --repo "$WORK/restic" >/dev/null 2>&1
HAVE_BORG=0; [ "$PEERS" = 1 ] && command -v borg >/dev/null && HAVE_BORG=1 && borg init --encryption=repokey "$WORK/borg" >/dev/null 2>&1

: > "$WORK/rows"
measure() {  # TOOL SCENARIO STORED_DIR COMMAND...
  tool=$1; scenario=$2; stored=$3; shift 3
  sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
  /usr/bin/time -f '%e %U %S %M' -o "$WORK/time" "$@" > "$WORK/$tool-$scenario.out" 2>&1 || { echo "$tool $scenario failed"; tail -5 "$WORK/$tool-$scenario.out"; exit 1; }
  read -r wall user sys rss < "$WORK/time"
  bytes=$( [ -n "$stored" ] && du -sb $stored | awk '{s+=$1} END {print s}' || echo 0)
  echo "$tool $scenario $wall $user $sys $rss $bytes" >> "$WORK/rows"
  printf '%-7s %-3s wall %7.1f s  cpu %7.1f s  rss %6d MiB  stored %8.1f MiB\n' "$tool" "$scenario" "$wall" "$(echo "$user + $sys" | bc)" "$((rss / 1024))" "$(echo "$bytes / 1048576" | bc -l)"
}
# Bytes stored on one mirror (the other holds the same objects).
FBKSTORE="$WORK/nginx0/root/bench"
for s in S1 S2; do
  measure fbk "$s" "$FBKSTORE" "$FBK" snapshot --config "$WORK/fbk.conf" --json
  [ $HAVE_RESTIC = 1 ] && measure restic "$s" "$WORK/restic" restic backup --repo "$WORK/restic" "$WORK/data"
  [ $HAVE_BORG = 1 ] && measure borg "$s" "$WORK/borg" borg create --compression zstd,3 "$WORK/borg::$s" "$WORK/data"
  [ "$s" = S1 ] && measure tar-zstd S1 "$WORK/reference.tar.zst" sh -c "tar -cf - -C '$WORK' data | zstd -3 -T0 -q -o '$WORK/reference.tar.zst'"
done
rm -f "$WORK/reference.tar.zst"
python3 Benchmarks/e2e/dataset.py "$WORK/data" "$SCALE" --change > "$WORK/changes.json"
measure fbk S3 "$FBKSTORE" "$FBK" snapshot --config "$WORK/fbk.conf" --json
# The S3 goal's bound, from the chunks this client cut around the changes.
python3 Benchmarks/e2e/s3_bound.py "$WORK/changes.json" "$FBK" "$(sed -n 's/^secret: "\(.*\)"$/\1/p' "$WORK/fbk.conf")" > "$WORK/s3-bound.json"
[ $HAVE_RESTIC = 1 ] && measure restic S3 "$WORK/restic" restic backup --repo "$WORK/restic" "$WORK/data"
[ $HAVE_BORG = 1 ] && measure borg S3 "$WORK/borg" borg create --compression zstd,3 "$WORK/borg::S3" "$WORK/data"
measure fbk S4 "" "$FBK" restore --from "$WORK/nginx0/root" --client bench --signing-key "$WORK/signing.pub" --key "$WORK/keys/private.pem" latest --target "$WORK/restore-fbk"
[ $HAVE_RESTIC = 1 ] && measure restic S4 "" restic restore latest --repo "$WORK/restic" --target "$WORK/restore-restic"
[ $HAVE_BORG = 1 ] && mkdir -p "$WORK/restore-borg" && measure borg S4 "" sh -c "cd '$WORK/restore-borg' && borg extract '$WORK/borg::S3'"
measure cp-a S4 "" cp -a "$WORK/data" "$WORK/restore-cp"
diff -r --no-dereference "$WORK/data" "$WORK/restore-fbk$WORK/data" >/dev/null && echo "fbk restore: identical"
rm -rf "$WORK/restore-cp" "$WORK/restore-restic" "$WORK/restore-borg"

# S5: 100,000 files, page cache warm for both (no drop_caches here).
python3 - "$WORK/many" <<'PY'
import os, sys
root = sys.argv[1]
for d in range(1000):
    os.makedirs(f"{root}/d{d:03}")
    for f in range(100):
        with open(f"{root}/d{d:03}/f{f:02}", "w") as out:
            out.write("x" * ((d * 100 + f) % 200))
PY
sleep 2  # files changed within fbk's settle time of being listed are read again next run
"$FBK" init --config "$WORK/many.conf" --client many --recipient "$WORK/keys/recipient.pem" \
  --mirror "file://$WORK/many-m0" --state "$WORK/many-state" "$WORK/many" >/dev/null
"$FBK" snapshot --config "$WORK/many.conf" >/dev/null
# Each tool runs 7 times, the two alternating, and the run with the median
# wall time is recorded: single runs of a third of a second vary by 30 %.
scan() {  # TOOL COMMAND...
  tool=$1; shift
  /usr/bin/time -f '%e %U %S %M' -a -o "$WORK/scan-$tool" "$@" > /dev/null 2>&1 || { echo "$tool S5 failed"; exit 1; }
}
record_scan() {  # TOOL
  sort -n "$WORK/scan-$1" | sed -n 4p > "$WORK/time"
  read -r wall user sys rss < "$WORK/time"
  echo "$1 S5 $wall $user $sys $rss 0" >> "$WORK/rows"
  printf '%-7s S5  wall %7.2f s  cpu %7.2f s  rss %6d MiB  (100,000 files; median of 7, all: %s)\n' "$1" "$wall" \
    "$(echo "$user + $sys" | bc)" "$((rss / 1024))" "$(cut -d' ' -f1 "$WORK/scan-$1" | sort -n | tr '\n' ' ')"
}
sync  # the restores' writeback is not this scenario's to wait for
find "$WORK/many" -printf '%s %T@ %C@ %i %m %U %G\n' > /dev/null  # warm the cache
rm -f "$WORK/scan-find" "$WORK/scan-fbk"
for i in 1 2 3 4 5 6 7; do
  scan find find "$WORK/many" -printf '%s %T@ %C@ %i %m %U %G\n'
  scan fbk "$FBK" snapshot --config "$WORK/many.conf"
done
record_scan find
record_scan fbk

python3 - "$WORK/rows" "$SIZE" "$SCALE" "$RESULTS" "$WORK/s3-bound.json" "$WORK/fbk-S1.out" "$WORK/fbk-S2.out" "$WORK/fbk-S3.out" <<'PY'
import json, sys
rows, size, scale, out = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
bound = json.load(open(sys.argv[5]))
results = {"dataset_bytes": size, "scale": scale, "runs": []}
for line in open(rows):
    tool, scenario, wall, user, sys_, rss, stored = line.split()
    results["runs"].append({"tool": tool, "scenario": scenario, "wall_s": float(wall), "cpu_s": float(user) + float(sys_),
                            "peak_rss_kib": int(rss), "stored_bytes": int(stored)})
for scenario, path in zip(["S1", "S2", "S3"], sys.argv[6:9]):
    text = open(path).read()
    summary = json.loads(text[text.index("{"):])
    results.setdefault("fbk_uploads", {})[scenario] = {m["url"]: {"objects": m["uploaded_objects"], "bytes": m["uploaded_bytes"]} for m in summary["mirrors"]}
uploaded = max(m["bytes"] for m in results["fbk_uploads"]["S3"].values())
results["s3_bound"] = dict(bound, uploaded=uploaded, met=uploaded <= bound["bound"])
print("S3: uploaded %d bytes to each mirror; bound 1.1 x (%d changed + %d in %d region chunks) = %d: %s" % (
    uploaded, bound["changed_compressed"], bound["region_chunks_compressed"], bound["regions"], bound["bound"],
    "met" if uploaded <= bound["bound"] else "NOT met"))
wall = {(r["tool"], r["scenario"]): r["wall_s"] for r in results["runs"]}
ratios = {}
for name, (a, b) in {"S1 / tar|zstd": (("fbk", "S1"), ("tar-zstd", "S1")), "S1 / restic": (("fbk", "S1"), ("restic", "S1")),
                     "S4 / cp -a": (("fbk", "S4"), ("cp-a", "S4")), "S4 / restic": (("fbk", "S4"), ("restic", "S4"))}.items():
    if a in wall and b in wall and wall[b] > 0:
        ratios[name] = round(wall[a] / wall[b], 2)
        print("fbk %s: %.2fx" % (name, ratios[name]))
results["ratios"] = ratios
json.dump(results, open(out, "w"), indent=2)
print("results written to", out)
PY
