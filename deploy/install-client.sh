#!/bin/sh
# Installs fbk on a Debian client from an enrollment bundle (fbk enroll).
#
#   deploy/install-client.sh BUNDLE_DIR [FBK_BINARY]
#
# Installs the binary to /usr/local/bin/fbk, the bundle to /etc/fbk (secrets
# 0600, root-owned), the state directory /var/lib/fbk (0700), and the
# systemd units fbk-snapshot.service and .timer, then enables the timer.
# With DESTDIR set, installs below it instead (for tests and images): paths
# inside the configuration are rewritten to point below DESTDIR, and
# systemd is left alone.
set -eu
BUNDLE=${1:?usage: install-client.sh BUNDLE_DIR [FBK_BINARY]}
BINARY=${2:-$(command -v fbk || echo .build/release/fbk)}
HERE=$(cd "$(dirname "$0")" && pwd)
D=${DESTDIR:-}

for f in fbk.conf recipient.pem secret; do
  [ -f "$BUNDLE/$f" ] || { echo "install-client: $BUNDLE/$f is missing: not an fbk enrollment bundle" >&2; exit 64; }
done
[ -x "$BINARY" ] || { echo "install-client: $BINARY is not an executable fbk" >&2; exit 66; }

umask 077
install -d -m 0755 "$D/usr/local/bin" "$D/etc/systemd/system"
install -d -m 0700 "$D/etc/fbk" "$D/var/lib/fbk"
install -m 0755 "$BINARY" "$D/usr/local/bin/fbk"
for f in "$BUNDLE"/*; do
  name=$(basename "$f")
  case "$name" in
    recipient*.pem|signing.pub) mode=0644 ;;
    htpasswd|check-entry.yaml) continue ;;   # these go to the mirrors and the check, not the client
    *) mode=0600 ;;
  esac
  install -m "$mode" "$f" "$D/etc/fbk/$name"
done
if [ -n "$D" ]; then
  sed -i -e "s#\"/etc/fbk/#\"$D/etc/fbk/#g" -e "s#\"/var/lib/fbk\"#\"$D/var/lib/fbk\"#g" "$D/etc/fbk/fbk.conf"
fi
if [ "$(id -u)" -eq 0 ]; then chown -R root:root "$D/etc/fbk" "$D/var/lib/fbk"; fi
install -m 0644 "$HERE/systemd/fbk-snapshot.service" "$HERE/systemd/fbk-snapshot.timer" "$D/etc/systemd/system/"

# A new client starts with an empty index; a reinstalled one keeps its own.
if [ ! -f "$D/var/lib/fbk/index.sqlite" ]; then
  "$D/usr/local/bin/fbk" index create --config "$D/etc/fbk/fbk.conf"
fi

if [ -z "$D" ] && [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  systemctl enable --now fbk-snapshot.timer
  echo "install-client: enabled fbk-snapshot.timer; first run: systemctl start fbk-snapshot.service"
else
  echo "install-client: installed below ${D:-/}; enable with: systemctl enable --now fbk-snapshot.timer"
fi
