#!/bin/sh
# Installs the fbk Debian package into a throwaway Debian 12 root and
# removes it again, checking what an administrator would rely on.
#
#   scripts/package-test.sh DEB [EXPECTED_VERSION]
#
# DEB               the package built by scripts/build-deb.sh
# EXPECTED_VERSION  optional: what `fbk --version` must print
#
# Needs root (debootstrap, chroot, mount) and Debian's archive. The first
# run debootstraps a minimal bookworm with systemd and man-db into the
# cache, ${FBK_PKGTEST_CACHE:-/var/tmp/fbk-pkgtest-cache} (a few minutes);
# later runs copy it (well under a minute). FBK_PKGTEST_MIRROR and
# FBK_PKGTEST_SECURITY_MIRROR choose the archive (default deb.debian.org).
# Prints one line per step, `ok: ...`, `FAIL: ...` or `skip: ...`, then a
# count; exits 0 only if no step failed. The per-run root under /var/tmp
# is unmounted and deleted on every exit, failures and interrupts included.
set -eu

usage() { echo "usage: scripts/package-test.sh DEB [EXPECTED_VERSION]" >&2; exit 64; }
if [ $# -lt 1 ] || [ $# -gt 2 ]; then usage; fi
DEB=$1 EXPECTED=${2:-}
[ -f "$DEB" ] || { echo "package-test: $DEB: no such file" >&2; exit 66; }
DEB=$(cd "$(dirname "$DEB")" && pwd)/$(basename "$DEB")
[ "$(id -u)" -eq 0 ] || { echo "package-test: must run as root (debootstrap, chroot, mount)" >&2; exit 77; }
for tool in debootstrap chroot mount umount flock dpkg-deb; do
  command -v "$tool" >/dev/null 2>&1 || { echo "package-test: $tool is missing: run scripts/install-deps.sh" >&2; exit 69; }
done

SUITE=bookworm
CACHE=${FBK_PKGTEST_CACHE:-/var/tmp/fbk-pkgtest-cache}
MIRROR=${FBK_PKGTEST_MIRROR:-http://deb.debian.org/debian}
SECURITY=${FBK_PKGTEST_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
# Changing what the cached root holds changes this, and rebuilds it.
STAMP="v1 $SUITE minbase+systemd,man-db $MIRROR $SECURITY"

passed=0 failed=0
ok() { echo "ok: $*"; passed=$((passed + 1)); }
fail() { echo "FAIL: $*"; failed=$((failed + 1)); }
skip() { echo "skip: $*"; }
log() { echo "package-test: $*" >&2; }

# Everything mounted below a directory, deepest first.
mounts_under() {
  awk -v d="$1/" 'index($2, d) == 1 { print $2 }' /proc/self/mounts | sort -r
}
unmount_under() {
  for m in $(mounts_under "$1"); do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
  done
}
# Deletes a scratch directory, but never through a mount point.
remove_tree() {
  [ -n "$1" ] && [ -e "$1" ] || return 0
  unmount_under "$1"
  if [ -n "$(mounts_under "$1")" ]; then
    log "still mounted below $1, not deleting it: $(mounts_under "$1" | tr '\n' ' ')"
    return 1
  fi
  rm -rf "$1"
}

RUN="" NEWCACHE=""
cleanup() {
  rc=$?
  remove_tree "$RUN" || rc=1
  remove_tree "$NEWCACHE" || rc=1
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

in_root() { # in_root ROOT COMMAND...: a clean environment inside the chroot
  r=$1; shift
  env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LC_ALL=C.UTF-8 \
    DEBIAN_FRONTEND=noninteractive chroot "$r" "$@"
}
# A Debian root's apt sources, resolver and no services started by packages.
prepare_root() {
  r=$1
  cat > "$r/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb $SECURITY $SUITE-security main
EOF
  printf '#!/bin/sh\nexit 101\n' > "$r/usr/sbin/policy-rc.d"
  chmod 0755 "$r/usr/sbin/policy-rc.d"
  cp -L /etc/resolv.conf "$r/etc/resolv.conf" 2>/dev/null || true
}

# --- the cached root: minbase bookworm + systemd (for systemd-analyze) + man-db
mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9
if [ ! -d "$CACHE/root" ] || [ "$(cat "$CACHE/stamp" 2>/dev/null)" != "$STAMP" ]; then
  log "building the cached Debian root in $CACHE (once; a few minutes)"
  rm -rf "$CACHE/root" "$CACHE/stamp"
  NEWCACHE=$(mktemp -d "$CACHE/root.new.XXXXXX")
  if ! debootstrap --variant=minbase "$SUITE" "$NEWCACHE" "$MIRROR" > "$CACHE/debootstrap.log" 2>&1; then
    tail -20 "$CACHE/debootstrap.log" >&2
    fail "debootstrap $SUITE (log: $CACHE/debootstrap.log)"
    exit 1
  fi
  prepare_root "$NEWCACHE"
  mount -t proc proc "$NEWCACHE/proc"
  if ! { in_root "$NEWCACHE" apt-get update -q &&
         in_root "$NEWCACHE" apt-get install -y -q --no-install-recommends systemd man-db &&
         in_root "$NEWCACHE" apt-get clean; } > "$CACHE/setup.log" 2>&1; then
    tail -20 "$CACHE/setup.log" >&2
    fail "installing systemd and man-db in the cached root (log: $CACHE/setup.log)"
    exit 1
  fi
  unmount_under "$NEWCACHE"
  mv "$NEWCACHE" "$CACHE/root"
  NEWCACHE=""
  echo "$STAMP" > "$CACHE/stamp"
  ok "cached Debian $SUITE root built in $CACHE"
fi
RUN=$(mktemp -d /var/tmp/fbk-pkgtest.XXXXXX)
ROOT="$RUN/root"
cp -a "$CACHE/root" "$ROOT"
flock -u 9

prepare_root "$ROOT"
mount -t proc proc "$ROOT/proc"
PKGFILE=/tmp/$(basename "$DEB")
cp "$DEB" "$ROOT$PKGFILE"

# --- install: apt resolves Depends from Debian's archive ------------------
if in_root "$ROOT" apt-get update -q > "$RUN/update.log" 2>&1 &&
   in_root "$ROOT" apt-get install -y -q --no-install-recommends "$PKGFILE" > "$RUN/install.log" 2>&1; then
  ok "apt-get install $(basename "$DEB") (dependencies from Debian $SUITE)"
else
  cat "$RUN/update.log" "$RUN/install.log" | tail -30
  fail "apt-get install $(basename "$DEB")"
  echo "package-test: $passed passed, $failed failed"
  exit 1
fi
# Keep what apt downloaded, so the next run fetches nothing it already has.
for f in "$ROOT"/var/cache/apt/archives/*.deb; do
  [ -f "$f" ] && [ ! -f "$CACHE/root/var/cache/apt/archives/${f##*/}" ] &&
    cp "$f" "$CACHE/root/var/cache/apt/archives/" 2>/dev/null
done || true

in_root "$ROOT" dpkg-query -L fbk | LC_ALL=C sort > "$RUN/files"
has() { grep -qx "$1" "$RUN/files"; }

# --- the binary ------------------------------------------------------------
if version=$(in_root "$ROOT" fbk --version 2>&1); then
  if [ -z "$EXPECTED" ] || [ "$version" = "$EXPECTED" ]; then
    ok "fbk --version: $version"
  else
    fail "fbk --version: '$version', expected '$EXPECTED'"
  fi
else
  fail "fbk --version exited non-zero: $version"
fi
if in_root "$ROOT" fbk --help > "$RUN/help" 2>&1; then
  ok "fbk --help"
else
  fail "fbk --help: $(head -3 "$RUN/help")"
fi

# script_step SCRIPT OK_MESSAGE FAIL_MESSAGE: runs a script written into
# the root; ok with its last line of output, or its last lines and a FAIL.
script_step() {
  if out=$(in_root "$ROOT" sh "$1" 2>&1); then
    ok "$2${out:+ ($(echo "$out" | tail -1))}"
  else
    echo "$out" | tail -10 | sed 's/^/  /'
    fail "$3"
  fi
}

# --- the main job, by the installed binary alone --------------------------
# Keys, a client with two directory mirrors, a snapshot and a restore that
# must give back the same bytes: every library the binary loads (OpenSSL,
# zstd, SQLite, libyaml, libcurl) came from the package's Depends.
cat > "$ROOT/tmp/job.sh" <<'JOB'
set -eu
export FBK_PASSPHRASE="package test (throwaway)"
W=/tmp/job
mkdir -p "$W/data"
cp -a /usr/share/doc "$W/data/"
fbk keygen --out "$W/operator" --type p384 --subject "/CN=fbk package test" > /dev/null
fbk init --config "$W/etc/fbk.conf" --client job --recipient "$W/operator/recipient.pem" \
  --mirror "file://$W/mirror-a/job/" --mirror "file://$W/mirror-b/job/" --state "$W/state" "$W/data" > /dev/null
fbk snapshot --config "$W/etc/fbk.conf" > /dev/null
fbk restore --from "$W/mirror-b" --client job --signing-key "$W/etc/signing.pub" \
  --key "$W/operator/private.pem" "latest:$W/data" --target "$W/restored" > /dev/null
diff -r "$W/data" "$W/restored"
echo "$(find "$W/data" -type f | wc -l) files"
JOB
script_step /tmp/job.sh "keygen, init, snapshot to two directory mirrors, restore: same bytes" \
  "the main job with the installed fbk"

# --- manual page and completions ------------------------------------------
if has /usr/share/man/man1/fbk.1.gz; then
  if page=$(in_root "$ROOT" man -w fbk 2>&1) && [ "$page" = /usr/share/man/man1/fbk.1.gz ]; then
    ok "man -w fbk: $page"
  else
    fail "man -w fbk: $page"
  fi
else
  skip "man page: the package has no /usr/share/man/man1/fbk.1.gz (built without MANDIR)"
fi
if has /usr/share/bash-completion/completions/fbk &&
   in_root "$ROOT" bash -c '. /usr/share/bash-completion/completions/fbk && complete -p fbk' > /dev/null 2>&1; then
  ok "bash completion installed and loads (complete -p fbk)"
else
  fail "bash completion /usr/share/bash-completion/completions/fbk missing or does not load"
fi
for f in /usr/share/zsh/vendor-completions/_fbk /usr/share/fish/vendor_completions.d/fbk.fish; do
  if has "$f" && [ -s "$ROOT$f" ]; then ok "completion $f"; else fail "completion $f missing"; fi
done

# --- systemd units: valid, none enabled ------------------------------------
units=$(cd "$ROOT" && find lib/systemd/system/ -maxdepth 1 \( -name 'fbk-*.service' -o -name 'fbk-*.timer' \) |
  LC_ALL=C sort | sed 's#^#/#' | tr '\n' ' ')
if [ -z "$units" ]; then
  fail "no fbk units in /lib/systemd/system"
else
  # In a chroot without a running systemd, verify still loads the units
  # and their dependencies from disk, and looks up their Documentation=
  # man pages (installed by the package). Any message naming one of our
  # units fails it.
  # shellcheck disable=SC2086
  if in_root "$ROOT" env SYSTEMD_LOG_LEVEL=notice systemd-analyze verify $units > "$RUN/verify.log" 2>&1 &&
     ! grep -q 'fbk' "$RUN/verify.log"; then
    ok "systemd-analyze verify: $(echo "$units" | wc -w) units"
  else
    sed 's/^/  /' "$RUN/verify.log"
    fail "systemd-analyze verify $units"
  fi
fi
enabled=$(find "$ROOT/etc/systemd" -name 'fbk*' 2>/dev/null | sed "s#^$ROOT##")
if [ -z "$enabled" ]; then
  ok "no fbk unit enabled after install"
else
  fail "fbk units enabled after install: $enabled"
fi

# --- a client installed from an enrollment bundle, as README says ---------
# fbk enroll (on the operator's machine; here the same root) and the
# packaged install-client.sh: /etc/fbk and /var/lib/fbk with an index, and
# neither a second binary in /usr/local/bin nor units in /etc/systemd.
cat > "$ROOT/tmp/client.sh" <<'CLIENT'
set -eu
fbk enroll pkgclient --mirror http://127.0.0.1:9/pkgclient/ --mirror http://[::1]:9/pkgclient/ \
  --recipient /tmp/job/operator/recipient.pem --path /tmp/job/data --out /tmp/bundles > /dev/null
/usr/share/fbk/deploy/install-client.sh /tmp/bundles/pkgclient
test -f /etc/fbk/fbk.conf && test -f /var/lib/fbk/index.sqlite
test "$(stat -c %a /etc/fbk/secret)" = 600 && test "$(stat -c %a /var/lib/fbk)" = 700
test ! -e /usr/local/bin/fbk && test ! -e /etc/systemd/system/fbk-snapshot.service
CLIENT
script_step /tmp/client.sh "fbk enroll, then /usr/share/fbk/deploy/install-client.sh: /etc/fbk and an index, the package's binary and units" \
  "install-client.sh from the package"

# --- purge: the package's files go, the administrator's stay ---------------
# The client's configuration and index above are the administrator's; the
# check's cache and an enabled timer (whose link the purge must remove, as
# its unit goes) are what running the mirror's role leaves.
mkdir -p "$ROOT/etc/fbk" "$ROOT/var/lib/fbk" "$ROOT/var/lib/fbk-check"
[ -f "$ROOT/etc/fbk/fbk.conf" ] || echo "# admin's" > "$ROOT/etc/fbk/fbk.conf"
[ -f "$ROOT/var/lib/fbk/index.sqlite" ] || echo "admin's" > "$ROOT/var/lib/fbk/index.sqlite"
echo "cache" > "$ROOT/var/lib/fbk-check/state"
in_root "$ROOT" systemctl enable fbk-check.timer > "$RUN/enable.log" 2>&1 ||
  fail "systemctl enable fbk-check.timer (offline): $(cat "$RUN/enable.log")"

if in_root "$ROOT" apt-get purge -y -q fbk > "$RUN/purge.log" 2>&1; then
  ok "apt-get purge fbk"
else
  tail -20 "$RUN/purge.log"
  fail "apt-get purge fbk"
fi
if in_root "$ROOT" dpkg -l fbk > "$RUN/dpkg-l" 2>&1 && grep -q '^[a-z][a-zA-Z] *fbk ' "$RUN/dpkg-l" &&
   ! grep -q '^un *fbk ' "$RUN/dpkg-l"; then
  fail "dpkg -l fbk still lists it: $(grep ' fbk ' "$RUN/dpkg-l")"
else
  ok "dpkg -l fbk: not installed"
fi
left=""
while IFS= read -r path; do
  [ "$path" = /. ] && continue
  if [ -d "$ROOT$path" ]; then
    # A directory (or, merged /usr, a link to one such as /lib) may stay
    # while another installed package owns it.
    in_root "$ROOT" dpkg-query -S "$path" > /dev/null 2>&1 || left="$left $path/"
  elif [ -e "$ROOT$path" ] || [ -L "$ROOT$path" ]; then
    left="$left $path"
  fi
done < "$RUN/files"
for f in "$ROOT"/var/lib/dpkg/info/fbk.* "$ROOT"/var/lib/systemd/deb-systemd-helper-enabled/fbk*; do
  [ -e "$f" ] && left="$left ${f#"$ROOT"}"
done
if [ -n "$(find "$ROOT/etc/systemd" -name 'fbk*' 2>/dev/null)" ]; then
  left="$left $(find "$ROOT/etc/systemd" -name 'fbk*' | sed "s#^$ROOT##" | tr '\n' ' ')"
fi
[ -e "$ROOT/var/lib/fbk-check" ] && left="$left /var/lib/fbk-check"
if [ -z "$left" ]; then
  ok "purge left none of the package's $(wc -l < "$RUN/files") paths, enable links or state"
else
  fail "left after purge:$left"
fi
if [ -f "$ROOT/etc/fbk/fbk.conf" ] && [ -f "$ROOT/var/lib/fbk/index.sqlite" ]; then
  ok "purge kept the administrator's /etc/fbk and /var/lib/fbk"
else
  fail "purge removed the administrator's files in /etc/fbk or /var/lib/fbk"
fi

echo "package-test: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
