#!/bin/sh
# Builds the Debian package of fbk with dpkg-deb (no debhelper, no debian/
# source directory): one package for both roles, the client and the mirror.
#
#   scripts/build-deb.sh BINARY VERSION OUTDIR [MANDIR]
#
# BINARY   the release build of fbk (make release: .build/release/fbk)
# VERSION  the package version, already a valid Debian version
#          (e.g. 0.4.0+git412.4d157d0)
# OUTDIR   where fbk_VERSION_ARCH.deb is written (created if missing)
# MANDIR   optional: a directory whose *.1 pages are installed
#
# Prints the path of the package on its last line of standard output.
# Packaging files live in packaging/deb/ (README.md there explains them).
# The tools come from scripts/install-deps.sh (dpkg-dev, binutils, lintian).
# FBK_DEB_MAINTAINER sets the Maintainer field and the changelog's trailer
# (default: fbk developers <fbk@example.org>, a placeholder: the project has
# no mailing address).
# LINTIAN_FAIL_ON=error,warning makes lintian's findings fatal (default: printed).
# SOURCE_DATE_EPOCH, if set, dates the changelog entry and every file
# (default: the last commit's date), so the same inputs give the same .deb.
set -eu

usage() { echo "usage: scripts/build-deb.sh BINARY VERSION OUTDIR [MANDIR]" >&2; exit 64; }
if [ $# -lt 3 ] || [ $# -gt 4 ]; then usage; fi
BINARY=$1 VERSION=$2 OUTDIR=$3 MANDIR=${4:-}

REPO=$(cd "$(dirname "$0")/.." && pwd)
PKG="$REPO/packaging/deb"
say() { echo "build-deb: $*" >&2; }
die() { say "$*"; exit 1; }

for tool in dpkg-deb dpkg-shlibdeps strip gzip du md5sum; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is missing: run scripts/install-deps.sh"
done
if [ ! -f "$BINARY" ] || [ ! -x "$BINARY" ]; then die "$BINARY is not an executable"; fi
dpkg --validate-version "$VERSION" 2>/dev/null || die "'$VERSION' is not a valid Debian version"
[ -z "$MANDIR" ] || [ -d "$MANDIR" ] || die "$MANDIR is not a directory"
ARCH=$(dpkg --print-architecture)
MAINTAINER=${FBK_DEB_MAINTAINER:-fbk developers <fbk@example.org>}
case "$MAINTAINER" in *[/\&]*) die "FBK_DEB_MAINTAINER must not contain / \\ or &" ;; esac

if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
  SOURCE_DATE_EPOCH=$(git -C "$REPO" log -1 --format=%ct 2>/dev/null || date +%s)
fi
export SOURCE_DATE_EPOCH

umask 022
WORK=$(mktemp -d "${TMPDIR:-/tmp}/fbk-deb.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
trap 'exit 130' INT TERM
# The tree sits where dpkg-shlibdeps expects a package's: debian/fbk, with
# a minimal debian/control beside it.
ROOT="$WORK/debian/fbk"
DOC="$ROOT/usr/share/doc/fbk"
SHARE="$ROOT/usr/share/fbk"
mkdir -p "$ROOT/usr/bin" "$ROOT/lib/systemd/system" "$DOC" "$SHARE"

# --- the binary, stripped if it still runs afterwards ---------------------
BIN="$ROOT/usr/bin/fbk"
want=$("$BINARY" --version) || die "$BINARY --version failed"
cp "$BINARY" "$BIN"
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$BIN"
got=$("$BIN" --version 2>/dev/null) || got="(failed)"
if [ "$got" != "$want" ]; then
  say "WARNING: the stripped binary answers --version with '$got', not '$want': shipping it unstripped"
  cp "$BINARY" "$BIN"
fi
say "binary: fbk --version = $want ($(stat -c %s "$BINARY") -> $(stat -c %s "$BIN") bytes)"

# --- systemd units: shipped, not enabled; the binary is /usr/bin/fbk ------
for unit in "$REPO"/deploy/systemd/*.service "$REPO"/deploy/systemd/*.timer; do
  [ -f "$unit" ] || continue
  sed 's#/usr/local/bin/fbk\([[:space:]]\|$\)#/usr/bin/fbk\1#g' "$unit" > "$ROOT/lib/systemd/system/$(basename "$unit")"
done
if grep -l '/usr/local/bin/fbk' "$ROOT"/lib/systemd/system/* >/dev/null 2>&1; then
  die "a unit still names /usr/local/bin/fbk"
fi

# --- deployment files and device scripts under /usr/share/fbk -------------
mkdir -p "$SHARE/deploy"
for f in "$REPO"/deploy/*; do
  [ "$(basename "$f")" = systemd ] && continue
  cp -R "$f" "$SHARE/deploy/"
done
# deploy/install-*.sh read their units from deploy/systemd: point them at
# the installed ones (absolute links: /usr and /lib are different trees).
mkdir -p "$SHARE/deploy/systemd"
for unit in "$ROOT"/lib/systemd/system/*; do
  ln -s "/lib/systemd/system/$(basename "$unit")" "$SHARE/deploy/systemd/$(basename "$unit")"
done
[ -d "$REPO/contrib" ] && cp -R "$REPO/contrib" "$SHARE/contrib"

# --- documentation: compressed when over 4 KiB (Policy 12.3) ---------------
for f in "$REPO/README.md" "$REPO/FORMAT.md" "$REPO"/docs/*.md; do
  [ -f "$f" ] && cp "$f" "$DOC/"
done
for f in "$DOC"/*; do
  if [ "$(stat -c %s "$f")" -gt 4096 ]; then gzip -9n "$f"; fi
done
cp "$PKG/copyright" "$DOC/copyright"
# A native version (no Debian revision) has its changelog as changelog.gz.
case "$VERSION" in *-*) changelog=changelog.Debian ;; *) changelog=changelog ;; esac
date_rfc=$(date -u -R -d "@$SOURCE_DATE_EPOCH")
sed -e "1s/^fbk ([^)]*)/fbk ($VERSION)/" \
    -e "s/@MAINTAINER@/$MAINTAINER/" -e "s/^\( -- .*>  \).*/\1$date_rfc/" "$PKG/changelog" > "$DOC/$changelog"
gzip -9n "$DOC/$changelog"

# --- manual pages ----------------------------------------------------------
if [ -n "$MANDIR" ]; then
  for page in "$MANDIR"/*.1; do
    [ -f "$page" ] || continue
    mkdir -p "$ROOT/usr/share/man/man1"
    gzip -9nc "$page" > "$ROOT/usr/share/man/man1/$(basename "$page").gz"
  done
fi
ls "$ROOT"/usr/share/man/man1/*.1.gz >/dev/null 2>&1 || say "WARNING: no manual pages packaged"

# --- shell completions, generated by the binary ----------------------------
mkdir -p "$ROOT/usr/share/bash-completion/completions" \
  "$ROOT/usr/share/zsh/vendor-completions" "$ROOT/usr/share/fish/vendor_completions.d"
# bash sources its completions: a #! line there is useless (lintian).
"$BIN" --generate-completion-script bash | sed '1{/^#!/d}' > "$ROOT/usr/share/bash-completion/completions/fbk"
"$BIN" --generate-completion-script zsh > "$ROOT/usr/share/zsh/vendor-completions/_fbk"
"$BIN" --generate-completion-script fish > "$ROOT/usr/share/fish/vendor_completions.d/fbk.fish"
for f in "$ROOT/usr/share/bash-completion/completions/fbk" \
  "$ROOT/usr/share/zsh/vendor-completions/_fbk" "$ROOT/usr/share/fish/vendor_completions.d/fbk.fish"; do
  [ -s "$f" ] || die "the binary generated an empty completion script $f"
done

if [ -f "$PKG/lintian-overrides" ]; then
  mkdir -p "$ROOT/usr/share/lintian/overrides"
  cp "$PKG/lintian-overrides" "$ROOT/usr/share/lintian/overrides/fbk"
fi

# --- modes: directories and programs 0755, everything else 0644 -----------
find "$ROOT" -type d -exec chmod 0755 {} +
find "$ROOT" -type f -exec chmod 0644 {} +
chmod 0755 "$BIN"
find "$SHARE" -type f | while IFS= read -r f; do
  if [ "$(head -c 2 "$f")" = '#!' ]; then chmod 0755 "$f"; fi
done

# --- control area ----------------------------------------------------------
INSTALLED_SIZE=$(du -sk --apparent-size "$ROOT" | cut -f1)

mkdir -p "$ROOT/DEBIAN"
printf 'Source: fbk\n\nPackage: fbk\nArchitecture: any\n' > "$WORK/debian/control"
DEPENDS=$(cd "$WORK" && dpkg-shlibdeps -O -e"$BIN" 2>"$WORK/shlibdeps.err" |
  sed -n 's/^shlibs:Depends=//p') || true
if [ -s "$WORK/shlibdeps.err" ]; then sed 's/^/build-deb: dpkg-shlibdeps: /' "$WORK/shlibdeps.err" >&2; fi
[ -n "$DEPENDS" ] || die "dpkg-shlibdeps found no dependencies"
say "Depends: $DEPENDS"

sed -e "s/@VERSION@/$VERSION/" -e "s/@MAINTAINER@/$MAINTAINER/" -e "s/@ARCH@/$ARCH/" \
    -e "s/@INSTALLED_SIZE@/$INSTALLED_SIZE/" -e "s/@DEPENDS@/$DEPENDS/" \
    "$PKG/control.in" > "$ROOT/DEBIAN/control"
if grep -q '@[A-Z_]*@' "$ROOT/DEBIAN/control"; then die "control.in has an unknown placeholder"; fi
for script in preinst postinst prerm postrm; do
  [ -f "$PKG/$script" ] && install -m 0755 "$PKG/$script" "$ROOT/DEBIAN/$script"
done
(cd "$ROOT" && find . -path ./DEBIAN -prune -o -type f -print | sed 's#^\./##' | LC_ALL=C sort |
  xargs -d '\n' md5sum) > "$ROOT/DEBIAN/md5sums"
chmod 0644 "$ROOT/DEBIAN/control" "$ROOT/DEBIAN/md5sums"

# Every file dated alike, so that two builds of the same inputs match.
find "$ROOT" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

mkdir -p "$OUTDIR"
DEB="$(cd "$OUTDIR" && pwd)/fbk_${VERSION}_${ARCH}.deb"
dpkg-deb --root-owner-group --build -Zxz "$ROOT" "$DEB" >/dev/null
say "built $DEB ($(stat -c %s "$DEB") bytes, Installed-Size $INSTALLED_SIZE KiB)"

if command -v lintian >/dev/null 2>&1; then
  # Findings are printed; LINTIAN_FAIL_ON (e.g. error,warning) makes them fatal.
  say "lintian${LINTIAN_FAIL_ON:+ (fails on $LINTIAN_FAIL_ON)}:"
  lintian --display-info --pedantic --fail-on "${LINTIAN_FAIL_ON:-none}" "$DEB" >&2 ||
    die "lintian found ${LINTIAN_FAIL_ON} tags"
  say "lintian: done"
else
  say "lintian is not installed: skipped (scripts/install-deps.sh installs it)"
fi
echo "$DEB"
