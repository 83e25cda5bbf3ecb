#!/bin/sh
# The main job on the embedded default: a throwaway operator key pair and
# client, two local-directory mirrors, a snapshot of a real directory, a few
# changes, and a second snapshot that uploads a small fraction of the first.
set -eu
FBK=$(readlink -f "${1:-.build/release/fbk}")
SOURCE=${FBK_DEMO_SOURCE:-/usr/share/doc}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/fbk-demo.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

export FBK_PASSPHRASE="demo passphrase (throwaway)"
"$FBK" keygen --out "$WORK/operator" --type p384 --subject "/CN=fbk demo operator" >/dev/null

# The source is copied so the demo can change files without touching the system.
mkdir -p "$WORK/data"
cp -a "$SOURCE" "$WORK/data/"
# Files changed less than 2 s before a snapshot lists them are read again
# by the next one (file times are coarse): let the copy settle.
sleep 2
"$FBK" init --config "$WORK/etc/fbk.conf" --client demo \
  --recipient "$WORK/operator/recipient.pem" \
  --mirror "file://$WORK/mirror-a/demo/" --mirror "file://$WORK/mirror-b/demo/" \
  --state "$WORK/state" "$WORK/data" >/dev/null

echo "== first snapshot of a copy of $SOURCE ($(du -sh "$WORK/data" | cut -f1)) to two local mirrors"
"$FBK" snapshot --config "$WORK/etc/fbk.conf"

echo
echo "== changing a few files"
i=0
for f in $(find "$WORK/data" -type f -name '*.gz' | head -n 5); do
  printf 'changed by the demo %s\n' "$i" >> "$f"; i=$((i + 1))
done
echo "new file" > "$WORK/data/new-file.txt"
echo "== second snapshot"
"$FBK" snapshot --config "$WORK/etc/fbk.conf"

echo
echo "== on each mirror (what a backup server holds: sealed packs, sealed records, signed catalogs)"
for m in mirror-a mirror-b; do
  printf '%s: %s packs, %s snapshots, %s\n' "$m" \
    "$(find "$WORK/$m" -name '*.pack' | wc -l)" "$(find "$WORK/$m" -name '*.catalog' | wc -l)" \
    "$(du -sh "$WORK/$m" | cut -f1)"
done
