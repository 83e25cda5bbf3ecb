#!/bin/sh
# fbk for OpenWrt: a daily configuration backup (sysupgrade -b) and a dump
# of every flash (MTD) partition, encrypted to the operator's certificate
# and uploaded to every mirror. Run from cron (fbk enroll --device openwrt
# prints the install steps):
#   0 3 * * * FBK_DEVICE_LIB=/usr/lib/fbk/fbk-device-lib.sh /usr/bin/fbk-openwrt.sh
# Settings: /etc/fbk-device.conf (see contrib/fbk-device-lib.sh), e.g.
#   CLIENT=wifi.lab
#   MIRRORS="http://[2001:db8::1]:8084/wifi.lab/ http://[2001:db8::2]:8084/wifi.lab/"
#   PASSWORD_FILE=/etc/fbk/password
#   RECIPIENT=/etc/fbk/recipient.pem
#   PART_SIZE=4194304     # flash dumps go through /tmp (RAM): keep parts small
# Restore: fbk decrypt the sysupgrade blob to a .tar.gz (sysupgrade -r FILE);
# for a flash dump, fbk decrypt its .manifest (checks and joins the parts).
set -eu
HERE=$(dirname "$0")
. "${FBK_DEVICE_CONF:-/etc/fbk-device.conf}"
. "${FBK_DEVICE_LIB:-$HERE/../fbk-device-lib.sh}"
: "${MTD_TABLE:=/proc/mtd}"
: "${MTD_DIR:=/dev}"

fbk_setup
if sysupgrade -b "$WORK/config.tar.gz"; then
  fbk_blob sysupgrade < "$WORK/config.tar.gz" || true
else
  fbk_log "sysupgrade -b failed"
  FAILED=$((FAILED + 1))
fi
rm -f "$WORK/config.tar.gz"
# /proc/mtd: 'mtd3: 00fa0000 00010000 "firmware"': dump each partition.
# (Redirections, not pipes, so the counters stay in this shell.)
tail -n +2 "$MTD_TABLE" > "$WORK/mtd"
while IFS=: read -r dev rest; do
  name=$(echo "$rest" | sed -n 's/.*"\(.*\)".*/\1/p' | tr 'A-Z' 'a-z' | tr -c 'a-z0-9_\n-' '_')
  fbk_parts "flash-$dev-$name" < "$MTD_DIR/$dev" || true
done < "$WORK/mtd"
fbk_finish
