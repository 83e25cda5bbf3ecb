#!/bin/sh
# Snapshot and restore throughput of a multi-GiB tree through local-directory
# mirrors, release build, one run each (the figures go in Benchmarks/README.md).
# Usage: Benchmarks/restore-bench.sh [GiB of random data, default 1]
set -eu
cd "$(dirname "$0")/.."
FBK=$(readlink -f .build/release/fbk)
GIB=${1:-1}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/fbk-restore-bench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
export FBK_PASSPHRASE="bench"
"$FBK" keygen --out "$WORK/keys" --type p384 --allow-short-passphrase >/dev/null
mkdir -p "$WORK/data/random" "$WORK/data/real"
i=0
while [ "$i" -lt "$((GIB * 4))" ]; do
  head -c 268435456 /dev/urandom > "$WORK/data/random/part$i"; i=$((i + 1))
done
cp -a /usr/lib/x86_64-linux-gnu "$WORK/data/real/" 2>/dev/null || true
cp -a /usr/share/doc "$WORK/data/real/" 2>/dev/null || true
SIZE=$(du -sb "$WORK/data" | cut -f1)
"$FBK" init --config "$WORK/etc/fbk.conf" --client bench --recipient "$WORK/keys/recipient.pem" \
  --mirror "file://$WORK/mirror/bench/" --state "$WORK/state" "$WORK/data" >/dev/null
sync
t0=$(date +%s.%N)
"$FBK" snapshot --config "$WORK/etc/fbk.conf" > "$WORK/snapshot.txt"
t1=$(date +%s.%N)
sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
t2=$(date +%s.%N)
"$FBK" restore --from "$WORK/mirror" --client bench --signing-key "$WORK/etc/signing.pub" --key "$WORK/keys/private.pem" latest --target "$WORK/restored" > "$WORK/restore.txt"
t3=$(date +%s.%N)
diff -r --no-dereference "$WORK/data" "$WORK/restored$WORK/data" >/dev/null && same=identical || same=DIFFERENT
python3 - "$SIZE" "$t0" "$t1" "$t2" "$t3" "$same" <<'PY'
import sys
size, t0, t1, t2, t3, same = int(sys.argv[1]), *map(float, sys.argv[2:6]), sys.argv[6]
mib = size / 1048576
print(f"tree: {mib:.0f} MiB ({same} after restore)")
print(f"snapshot: {t1 - t0:.1f} s, {mib / (t1 - t0):.0f} MiB/s")
print(f"restore:  {t3 - t2:.1f} s, {mib / (t3 - t2):.0f} MiB/s")
PY
cat "$WORK/snapshot.txt" | head -2
