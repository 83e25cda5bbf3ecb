#!/bin/sh
# Chunker speed, fbk against BorgBackup, on the same bytes in the same run:
# random data and real files (libraries, docs, binaries), MiB of each.
# Usage: Benchmarks/compare-borg.sh [MiB] [ROUNDS]   (needs `make release` and borgbackup)
# Each round runs fbk's chunker (best of 3) and then borg's (best of 3) on
# the same file, so both see the same moments of a shared machine; the
# summary gives, per data kind, the median and the best of the rounds and
# the ratios fbk/borg of each (fbk with borg's own parameters, and with
# fbk's defaults).
set -eu
cd "$(dirname "$0")/.."
MIB=${1:-1024}
ROUNDS=${2:-5}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
BENCH=${FBK_BENCH_TOOL:-.build/release/fbk-bench}  # FBK_BENCH_TOOL: another build, for a before/after
BORG=""
for py in python3 /usr/bin/python3; do
  if "$py" -c 'import borg.chunker' 2>/dev/null; then BORG=$py; break; fi
done
[ -n "$BORG" ] || { echo "borgbackup not installed: run ./scripts/install-deps.sh --bench"; exit 1; }
"$BENCH" gen --mib "$MIB" --out "$TMP/data"
for kind in random real; do
  echo "== $kind ($MIB MiB, $ROUNDS rounds, MiB/s)"
  : > "$TMP/rounds"
  for r in $(seq "$ROUNDS"); do
    # fbk-bench prints "buzhash fbk default, FILE  N MiB/s …" then the borg-parameters line.
    fbk=$("$BENCH" chunker --borg --file "$TMP/data-$kind.bin" | sed -n 's/^buzhash .*\.bin *\([0-9.]*\) MiB\/s.*/\1/p' | paste -sd' ')
    borg=$("$BORG" Benchmarks/borg_chunker.py "$TMP/data-$kind.bin" | awk '{print $5}')
    echo "$fbk $borg" >> "$TMP/rounds"
    echo "round $r: fbk defaults $(echo "$fbk" | cut -d' ' -f1), fbk borg-parameters $(echo "$fbk" | cut -d' ' -f2), borg $borg"
  done
  python3 - "$TMP/rounds" <<'PY'
import statistics, sys
rows = [[float(x) for x in line.split()] for line in open(sys.argv[1])]
defaults, same, borg = zip(*rows)
for label, pick in (("median", statistics.median), ("best", max)):
    print(f"{label:6}: fbk defaults {pick(defaults):7.1f}, fbk borg-parameters {pick(same):7.1f}, borg {pick(borg):7.1f}"
          f"  ->  same parameters {pick(same) / pick(borg):.2f}x, fbk defaults {pick(defaults) / pick(borg):.2f}x")
ratios = sorted(s / b for s, b in zip(same, borg))
print(f"per-round ratio, same parameters: {' '.join(f'{r:.2f}' for r in ratios)} (median {statistics.median(ratios):.2f}x)")
PY
done
