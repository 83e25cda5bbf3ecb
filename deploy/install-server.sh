#!/bin/sh
# Sets up an fbk mirror on a Debian server: nginx with the WebDAV rules,
# the storage directory, the htpasswd files, and the weekly fbk check.
#
#   deploy/install-server.sh [FBK_BINARY]
#
# Then, per client: run the commands `fbk enroll` prints (they set its line
# in /etc/nginx/fbk.htpasswd, replacing an older one, create /srv/fbk/CLIENT
# owned by www-data with its escrowed secret in keys/), and add its
# check-entry.yaml to /etc/fbk/check.conf.
#
# Firewall: allow only the enrolled clients' addresses to reach port 8084
# and only the operator's address to reach 8085, over IPv6 as in the
# fleet's design (e.g. on OPNsense: a pass rule per client address to the
# mirror's address, port 8084, and a block rule for the rest). There is no
# TLS: everything stored is already encrypted, and the ports are closed to
# everyone else.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
BINARY=${1:-$(command -v fbk || echo "$HERE/../.build/release/fbk")}
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q --no-install-recommends nginx libnginx-mod-http-dav-ext apache2-utils

install -d -o www-data -g www-data -m 0750 /srv/fbk /srv/fbk/.incoming
install -m 0644 "$HERE/nginx/fbk-dav.conf" "$HERE/nginx/fbk-operator.conf" "$HERE/nginx/fbk-prune.conf" /etc/nginx/
install -m 0644 "$HERE/nginx/fbk-mirror.site" /etc/nginx/sites-available/fbk
ln -sf /etc/nginx/sites-available/fbk /etc/nginx/sites-enabled/fbk
for f in /etc/nginx/fbk.htpasswd /etc/nginx/fbk-operators.htpasswd /etc/nginx/fbk-prune.htpasswd; do
  [ -f "$f" ] || install -m 0640 -o root -g www-data /dev/null "$f"
done
nginx -t
systemctl reload nginx || systemctl restart nginx

# fbk from the Debian package keeps its /usr/bin/fbk and the package's
# units; a binary built from source goes to /usr/local/bin with the units.
if [ "$(readlink -f "$BINARY")" != /usr/bin/fbk ] || ! dpkg-query -S /usr/bin/fbk >/dev/null 2>&1; then
  install -m 0755 "$BINARY" /usr/local/bin/fbk
  install -m 0644 "$HERE/systemd/fbk-check.service" "$HERE/systemd/fbk-check.timer" \
    "$HERE/systemd/fbk-prune.service" "$HERE/systemd/fbk-prune.timer" /etc/systemd/system/
fi
install -d -m 0755 /etc/fbk /var/lib/prometheus/node-exporter
[ -f /etc/fbk/check.conf ] || printf 'clients:\n' > /etc/fbk/check.conf
systemctl daemon-reload
systemctl enable --now fbk-check.timer
echo "install-server: nginx serves /srv/fbk on 8084 (clients), 8085 (operators) and 8086 (prune); fbk check runs weekly."
echo "install-server: once /etc/fbk/check.conf gives clients a retention: policy, run fbk prune --dry-run, then: systemctl enable --now fbk-prune.timer"
echo "install-server: add operators with: htpasswd -B /etc/nginx/fbk-operators.htpasswd NAME"
