#!/bin/sh
# Chunker speed, fbk against BorgBackup, on the same bytes in the same run:
# 1 GiB of random data and 1 GiB of real files (libraries, docs, binaries).
# Usage: Benchmarks/compare-borg.sh [MiB]   (needs `make release` and borgbackup)
set -eu
cd "$(dirname "$0")/.."
MIB=${1:-1024}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
BENCH=.build/release/fbk-bench
"$BENCH" gen --mib "$MIB" --out "$TMP/data"
for kind in random real; do
  echo "== $kind"
  "$BENCH" chunker --borg --file "$TMP/data-$kind.bin"
  if python3 -c 'import borg.chunker' 2>/dev/null || /usr/bin/python3 -c 'import borg.chunker' 2>/dev/null; then
    /usr/bin/python3 Benchmarks/borg_chunker.py "$TMP/data-$kind.bin"
  else
    echo "borgbackup not installed: run ./scripts/install-deps.sh --bench"
  fi
done
