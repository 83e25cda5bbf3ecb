#!/bin/sh
# Two builds of fbk side by side, alternating, caches dropped before each
# run: S1 (first snapshot to two file:// mirrors) with each build, then S4
# (full restore) of one repository with each. For before/after figures of
# a change on this noisy machine (Benchmarks/README.md).
# Usage: Benchmarks/e2e/compare.sh BEFORE_FBK AFTER_FBK [SCALE] [ROUNDS]
set -eu
BEFORE=$1; AFTER=$2; SCALE=${3:-0.6}; ROUNDS=${4:-3}
cd "$(dirname "$0")/../.."
W=$(mktemp -d "${FBK_BENCH_DIR:-/var/tmp}/fbk-compare.XXXXXX")
trap 'rm -rf "$W"' EXIT
export FBK_PASSPHRASE=compare-passphrase
python3 Benchmarks/e2e/dataset.py "$W/data" "$SCALE" > /dev/null
"$AFTER" keygen --out "$W/keys" > /dev/null 2>&1
drop() { sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true; }
run() {  # LABEL COMMAND...
  label=$1; shift
  drop
  /usr/bin/time -f "$label %e s  user %U  sys %S  rss %M KiB" "$@" > /dev/null 2> "$W/time" || { cat "$W/time"; exit 1; }
  tail -1 "$W/time"
}
init() {  # FBK DIR
  "$1" init --config "$2/fbk.conf" --client c1 --recipient "$W/keys/recipient.pem" \
    --mirror "file://$2/m1/c1/" --mirror "file://$2/m2/c1/" --state "$2/state" "$W/data" > /dev/null 2>&1
}
for round in $(seq "$ROUNDS"); do
  for side in before after; do
    fbk=$BEFORE; [ $side = after ] && fbk=$AFTER
    rm -rf "$W/s1"; init "$fbk" "$W/s1"
    run "$side S1" "$fbk" snapshot --config "$W/s1/fbk.conf"
  done
done
# One repository (written by the first build) restored by both.
rm -rf "$W/repo"; init "$BEFORE" "$W/repo"; "$BEFORE" snapshot --config "$W/repo/fbk.conf" > /dev/null 2>&1
for round in $(seq "$ROUNDS"); do
  for side in before after; do
    fbk=$BEFORE; [ $side = after ] && fbk=$AFTER
    rm -rf "$W/restored"
    run "$side S4" "$fbk" restore --from "$W/repo/m1" --client c1 --signing-key "$W/repo/signing.pub" \
      --key "$W/keys/private.pem" latest --target "$W/restored"
  done
done
