# fbk-device-lib.sh: shared by the device scripts (POSIX sh, busybox ash).
# Encrypts streams with openssl to the operator's certificate and uploads
# them with curl to every mirror, as FORMAT.md section 12 names them.
# Memory stays bounded: streams are cut into parts of PART_SIZE bytes on
# local disk (TMP), each encrypted with -stream and uploaded, then deleted.
#
# Settings (from the device's configuration file):
#   CLIENT          the client name (its directory on the mirrors)
#   MIRRORS         space-separated URLs of the client's directory on each mirror
#   PASSWORD_FILE   the WebDAV password (mode 0600)
#   RECIPIENT       the operator's certificate (PEM)
#   PART_SIZE       bytes per part of a large stream (default 1 GiB)
#   TMP             work directory (default /tmp); needs PART_SIZE free

: "${PART_SIZE:=1073741824}"
: "${TMP:=/tmp}"

fbk_log() { echo "fbk-device: $*" >&2; logger -t fbk-device "$*" 2>/dev/null || true; }

fbk_setup() {
  for v in CLIENT MIRRORS PASSWORD_FILE RECIPIENT; do
    eval "val=\${$v:-}"
    [ -n "$val" ] || { fbk_log "setting $v is missing"; exit 64; }
  done
  [ -r "$RECIPIENT" ] || { fbk_log "cannot read the certificate $RECIPIENT: refusing to upload anything unencrypted"; exit 66; }
  [ -r "$PASSWORD_FILE" ] || { fbk_log "cannot read $PASSWORD_FILE"; exit 66; }
  WORK=$(mktemp -d "$TMP/fbk-device.XXXXXX")
  trap 'rm -rf "$WORK"' EXIT INT TERM
  # curl reads the credentials from a file, never from its command line.
  umask 077
  printf 'user = "%s:%s"\n' "$CLIENT" "$(cat "$PASSWORD_FILE")" > "$WORK/curl.conf"
  # AuthEnvelopedData (AES-GCM) where openssl cms has it, else S/MIME EnvelopedData (AES-CBC).
  if echo probe | openssl cms -encrypt -binary -aes-256-gcm -outform DER "$RECIPIENT" >/dev/null 2>&1; then
    ENCRYPT="openssl cms -encrypt -binary -stream -aes-256-gcm -outform DER"
  else
    ENCRYPT="openssl smime -encrypt -binary -stream -aes256 -outform DER"
  fi
  UPLOADED=0
  FAILED=0
}

# fbk_encrypt < plaintext > sealed
fbk_encrypt() { $ENCRYPT "$RECIPIENT"; }

# fbk_upload FILE NAME: PUT to every mirror; true if at least one stored it.
fbk_upload() {
  ok=0
  for m in $MIRRORS; do
    code=$(curl -s -K "$WORK/curl.conf" --connect-timeout 10 --speed-limit 1024 --speed-time 60 \
           -o "$WORK/response" -w '%{http_code}' -T "$1" "${m%/}/blobs/$2" || echo 000)
    if [ "$code" = 201 ] || [ "$code" = 204 ] || { [ "$code" = 409 ] && grep -q fbk-object-exists "$WORK/response"; }; then
      ok=1
    else
      fbk_log "$m: upload of $2 failed (HTTP $code)"
    fi
  done
  if [ "$ok" = 1 ]; then UPLOADED=$((UPLOADED + 1)); return 0; fi
  FAILED=$((FAILED + 1))
  return 1
}

# fbk_blob KIND < stream: one object, for small streams (configuration archives).
fbk_blob() {
  name="$1-$(date -u +%Y%m%dT%H%M%SZ).cms"
  fbk_encrypt > "$WORK/blob" || { fbk_log "encryption of $1 failed"; FAILED=$((FAILED + 1)); return 1; }
  fbk_upload "$WORK/blob" "$name"
  rm -f "$WORK/blob"
}

# fbk_parts KIND < stream: cut into PART_SIZE parts, each encrypted and
# uploaded, then a manifest listing every part's size and SHA-256, last.
fbk_parts() {
  base="$1-$(date -u +%Y%m%dT%H%M%SZ)"
  block=65536
  count=$(( (PART_SIZE + block - 1) / block ))
  n=0
  : > "$WORK/manifest.body"
  while :; do
    dd bs=$block count=$count iflag=fullblock of="$WORK/part" 2>/dev/null
    [ -s "$WORK/part" ] || break
    n=$((n + 1))
    part=$(printf '%s.part%04d.cms' "$base" "$n")
    fbk_encrypt < "$WORK/part" > "$WORK/part.cms" || { fbk_log "encryption of $part failed"; FAILED=$((FAILED + 1)); return 1; }
    size=$(wc -c < "$WORK/part.cms" | tr -d ' ')
    sum=$(sha256sum "$WORK/part.cms" | cut -d' ' -f1)
    fbk_upload "$WORK/part.cms" "$part" || return 1
    echo "part $n $size $sum" >> "$WORK/manifest.body"
    rm -f "$WORK/part" "$WORK/part.cms"
  done
  { echo "fbk-blob-manifest 1"; cat "$WORK/manifest.body"; echo "parts $n"; } > "$WORK/manifest"
  fbk_upload "$WORK/manifest" "$base.manifest"
}

fbk_finish() {
  fbk_log "$UPLOADED objects uploaded, $FAILED failed"
  [ "$FAILED" = 0 ]
}
