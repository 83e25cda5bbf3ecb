#!/bin/sh
# Man pages for fbk and each subcommand, generated from the argument
# parser by swift-argument-parser's generate-manual plugin (it builds the
# package in debug mode and reads `fbk --experimental-dump-help`).
#
#   scripts/generate-man.sh OUTDIR
set -eu
cd "$(dirname "$0")/.."
out=${1:?usage: generate-man.sh OUTDIR}
SWIFT=${SWIFT:-$(command -v swift || echo /opt/swift/usr/bin/swift)}
date=$(git log -1 --format=%cs 2>/dev/null || date -u +%F)
"$SWIFT" package plugin generate-manual --configuration debug --multi-page \
  --date "$date" --authors "fbk developers" --section 1 >/dev/null
rm -rf "$out"
mkdir -p "$out"
# Pages named as git's are (fbk-snapshot.1, `man fbk-snapshot`), blank
# lines as paragraph breaks (mdoc warns on empty lines); no page for the
# `help` subcommand. NAME says fbk-snapshot (whatis wants one word), the
# synopsis the command as typed, `fbk snapshot`.
for page in .build/plugins/GenerateManual/outputs/fbk/*.1; do
  name=$(basename "$page" .1)
  [ "$name" = fbk.help ] && continue
  sed -e 's/^$/.Pp/' \
      -e '/^\.Xr fbk\.help 1/d' \
      -e 's/^\(\.Xr fbk\)\.\([a-z.-]*\) 1/\1-\2 1/' \
      -e '/^\.Xr /s/\(fbk-[a-z-]*\)\./\1-/g' \
      -e '/^\.Dt /s/\([A-Z]\)\./\1-/g' \
      "$page" | awk -v page="$(echo "$name" | tr . -)" '
        /^\.Nm "[^"]*"$/ && !named { typed = substr($0, 5); print ".Nm " page; named = 1; next }
        /^\.Nm$/ && typed != "" { print ".Nm " typed; next }
        { print }' > "$out/$(echo "$name" | tr . -).1"
done
echo "generate-man: $(ls "$out" | wc -l) man pages in $out" >&2
