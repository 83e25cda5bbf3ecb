#!/bin/sh
# Browsing snapshots, fbk beside restic on the same data in the same run
# (make bench-e2e runs it): `find` across snapshots for a name pattern,
# `diff` of the first and the last snapshot, and through `mount`: listing
# the whole latest snapshot (`find`) and reading every file of it (`cat`).
# Both repositories are local directories; each figure is wall time and
# peak RSS (/usr/bin/time) of the command (for mount: of the server
# process, measured until it is unmounted).
# Usage: Benchmarks/e2e/browse.sh [SCALE]   (1.0: about 1.5 GB)
set -eu
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
SCALE=${1:-1.0}
FBK=$ROOT/.build/release/fbk
WORK=$(mktemp -d "${FBK_BENCH_DIR:-/var/tmp}/fbk-browse.XXXXXX")
RESULTS=${FBK_BENCH_BROWSE_RESULTS:-$ROOT/Benchmarks/e2e/results-browse.json}
cleanup() {
  for m in "$WORK"/mnt-*; do fusermount3 -u -z "$m" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
export RESTIC_PASSWORD=bench FBK_PASSPHRASE=bench
command -v restic >/dev/null || { echo "restic is missing: ./scripts/install-deps.sh --bench"; exit 1; }

echo "== generating the dataset (scale $SCALE)"
python3 Benchmarks/e2e/dataset.py "$WORK/data" "$SCALE"
"$FBK" keygen --out "$WORK/keys" --type p384 --allow-short-passphrase >/dev/null
"$FBK" init --config "$WORK/fbk/fbk.conf" --client bench --recipient "$WORK/keys/recipient.pem" \
  --mirror "file://$WORK/store/bench/" --state "$WORK/state" "$WORK/data" >/dev/null
restic init --repo "$WORK/restic" >/dev/null 2>&1
"$FBK" snapshot --config "$WORK/fbk/fbk.conf" >/dev/null
restic backup --repo "$WORK/restic" "$WORK/data" >/dev/null
python3 Benchmarks/e2e/dataset.py "$WORK/data" "$SCALE" --change > /dev/null
sleep 2
"$FBK" snapshot --config "$WORK/fbk/fbk.conf" >/dev/null
restic backup --repo "$WORK/restic" "$WORK/data" >/dev/null
FIRST=$("$FBK" snapshots --from "$WORK/store" --client bench --signing-key "$WORK/fbk/signing.pub" --key "$WORK/keys/private.pem" --json |
  python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
RFIRST=$(restic snapshots --repo "$WORK/restic" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["short_id"])')
RLAST=$(restic snapshots --repo "$WORK/restic" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[-1]["short_id"])')
OPEN="--from $WORK/store --client bench --signing-key $WORK/fbk/signing.pub --key $WORK/keys/private.pem"

: > "$WORK/rows"
measure() {  # TOOL SCENARIO COMMAND...
  tool=$1; scenario=$2; shift 2
  sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
  /usr/bin/time -f '%e %M' -o "$WORK/time" "$@" > "$WORK/$tool-$scenario.out" 2>&1 || { echo "$tool $scenario failed"; tail -5 "$WORK/$tool-$scenario.out"; exit 1; }
  read -r wall rss < "$WORK/time"
  lines=$(wc -l < "$WORK/$tool-$scenario.out")
  echo "$tool $scenario $wall $rss $lines" >> "$WORK/rows"
  printf '%-7s %-10s wall %7.2f s  rss %6d MiB  (%d lines)\n' "$tool" "$scenario" "$wall" "$((rss / 1024))" "$lines"
}
# shellcheck disable=SC2086
measure fbk find "$FBK" find $OPEN 'f0001*.conf'
measure restic find restic find --repo "$WORK/restic" 'f0001*.conf'
# shellcheck disable=SC2086
measure fbk diff "$FBK" diff $OPEN "$FIRST" latest
measure restic diff restic diff --repo "$WORK/restic" "$RFIRST" "$RLAST"

# Through mount: the server's RSS over a whole listing and a whole read.
mountbench() {  # TOOL MOUNTPOINT LATEST_DATA_DIR COMMAND...
  tool=$1; mnt=$2; latest=$3; shift 3
  mkdir -p "$mnt"
  sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
  /usr/bin/time -f '%e %M' -o "$WORK/time-mount-$tool" "$@" "$mnt" > "$WORK/mount-$tool.log" 2>&1 &
  i=0; until [ -d "$latest" ]; do i=$((i + 1)); [ $i -gt 600 ] && { cat "$WORK/mount-$tool.log"; exit 1; }; sleep 0.1; done
  start=$(date +%s.%N)
  n=$(find "$latest" | wc -l)
  listed=$(date +%s.%N)
  find "$latest" -type f -exec cat {} + | wc -c > "$WORK/bytes-$tool"
  read_all=$(date +%s.%N)
  fusermount3 -u "$mnt"
  wait
  read -r _ rss < "$WORK/time-mount-$tool"
  find_s=$(echo "$listed - $start" | bc); cat_s=$(echo "$read_all - $listed" | bc)
  echo "$tool mount-find $find_s $rss $n" >> "$WORK/rows"
  echo "$tool mount-cat $cat_s $rss $(cat "$WORK/bytes-$tool")" >> "$WORK/rows"
  printf '%-7s mount      find %6.2f s (%d entries), cat %6.2f s (%s bytes), server rss %6d MiB\n' "$tool" "$find_s" "$n" "$cat_s" "$(cat "$WORK/bytes-$tool")" "$((rss / 1024))"
}
# shellcheck disable=SC2086
mountbench fbk "$WORK/mnt-fbk" "$WORK/mnt-fbk/latest$WORK/data" "$FBK" mount $OPEN
mountbench restic "$WORK/mnt-restic" "$WORK/mnt-restic/snapshots/latest$WORK/data" restic mount --repo "$WORK/restic"

python3 - "$WORK/rows" "$SCALE" "$RESULTS" <<'PY'
import json, sys
rows, scale, out = sys.argv[1], float(sys.argv[2]), sys.argv[3]
runs = {}
for line in open(rows):
    tool, scenario, wall, rss, size = line.split()
    runs.setdefault(scenario, {})[tool] = {"wall_s": float(wall), "peak_rss_kib": int(rss), "output": int(size)}
for scenario, r in runs.items():
    f, x = r["fbk"], r["restic"]
    print("%-10s fbk %.2f s %d MiB, restic %.2f s %d MiB: %.2fx the time" % (scenario, f["wall_s"], f["peak_rss_kib"] // 1024,
          x["wall_s"], x["peak_rss_kib"] // 1024, f["wall_s"] / max(x["wall_s"], 0.01)))
json.dump({"scale": scale, "scenarios": runs}, open(out, "w"), indent=2)
print("results written to", out)
PY
