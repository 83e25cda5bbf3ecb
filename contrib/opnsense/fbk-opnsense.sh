#!/bin/sh
# fbk for OPNsense (FreeBSD): a recursive ZFS snapshot sent as a stream
# (full on the first day of the month or when no base exists, otherwise
# incremental from the previous snapshot, which is kept as the base), and a
# tarball of /conf; both encrypted to the operator's certificate and
# uploaded to every mirror in parts of PART_SIZE with a manifest.
# Run from OPNsense cron through configd (actions_fbk.conf).
# Settings: /usr/local/etc/fbk-device.conf (see contrib/fbk-device-lib.sh),
# plus POOL (default zroot).
# Restore: decrypt each part of a set in order, concatenate, then
# `zfs receive` (after the full it is based on, for an incremental), or
# `tar -xzf` for the conf blob.
set -eu
HERE=$(dirname "$0")
. "${FBK_DEVICE_CONF:-/usr/local/etc/fbk-device.conf}"
. "${FBK_DEVICE_LIB:-$HERE/../fbk-device-lib.sh}"
: "${POOL:=zroot}"
: "${CONF_DIR:=/conf}"

fbk_setup
now=$(date -u +%Y%m%dT%H%M%SZ)
snap="$POOL@fbk-$now"
base=$(zfs list -H -t snapshot -o name -s creation 2>/dev/null | grep "^$POOL@fbk-" | tail -n 1 || true)
zfs snapshot -r "$snap"

# tar of /conf: small, one object.
if tar -czf "$WORK/conf.tar.gz" -C "$(dirname "$CONF_DIR")" "$(basename "$CONF_DIR")"; then
  fbk_blob conf < "$WORK/conf.tar.gz" || true
fi
rm -f "$WORK/conf.tar.gz"

if [ -z "$base" ] || [ "$(date -u +%d)" = 01 ]; then kind=zfs-full; from=""; else kind=zfs-incr; from="-i $base"; fi
mkfifo "$WORK/stream"
# shellcheck disable=SC2086
zfs send -R $from "$snap" > "$WORK/stream" &
sender=$!
fbk_parts "$kind" < "$WORK/stream" || true
wait "$sender" || { fbk_log "zfs send failed"; FAILED=$((FAILED + 1)); }

if [ "$FAILED" = 0 ]; then
  # The new snapshot becomes the base; the old base goes.
  if [ -n "$base" ]; then zfs destroy -r "$base" || fbk_log "could not destroy the old base $base"; fi
else
  # Keep the old base so the next incremental stays valid.
  zfs destroy -r "$snap" || fbk_log "could not destroy $snap"
fi
fbk_finish
