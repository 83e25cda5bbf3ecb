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
  for fbk_v in CLIENT MIRRORS PASSWORD_FILE RECIPIENT; do
    eval "fbk_val=\${$fbk_v:-}"
    [ -n "$fbk_val" ] || { fbk_log "setting $fbk_v is missing"; exit 64; }
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
  FBK_MADE=""
}

# fbk_encrypt < plaintext > sealed
fbk_encrypt() { $ENCRYPT "$RECIPIENT"; }

# fbk_mkcol MIRROR: make the client's directory and blobs/ on a mirror, once
# a run (a stock WebDAV server refuses a PUT into a missing directory;
# 201 made, 405 there already, fbk's nginx rules answer 409 when it exists).
fbk_mkcol() {
  case " $FBK_MADE " in *" $1 "*) return 0 ;; esac
  for fbk_dir in "${1%/}/" "${1%/}/blobs/"; do
    curl -s -K "$WORK/curl.conf" --connect-timeout 10 -o /dev/null -X MKCOL "$fbk_dir" || true
  done
  FBK_MADE="$FBK_MADE $1"
}

# fbk_upload FILE NAME: PUT to every mirror; true if at least one stored it.
fbk_upload() {
  fbk_ok=0
  for fbk_m in $MIRRORS; do
    fbk_mkcol "$fbk_m"
    fbk_code=$(curl -s -K "$WORK/curl.conf" --connect-timeout 10 --speed-limit 1024 --speed-time 60 \
           -o "$WORK/response" -w '%{http_code}' -T "$1" "${fbk_m%/}/blobs/$2" || echo 000)
    if [ "$fbk_code" = 201 ] || [ "$fbk_code" = 204 ] || { [ "$fbk_code" = 409 ] && grep -q fbk-object-exists "$WORK/response"; }; then
      fbk_ok=1
    else
      fbk_log "$fbk_m: upload of $2 failed (HTTP $fbk_code)"
    fi
  done
  if [ "$fbk_ok" = 1 ]; then UPLOADED=$((UPLOADED + 1)); return 0; fi
  FAILED=$((FAILED + 1))
  return 1
}

# fbk_stamp KIND: a blob's name stem, KIND-YYYYMMDDTHHMMSSZ-RANDOM. The 16
# random hex digits make the name unpredictable: nobody can start uploading
# under it before the device does (FORMAT.md 12). Names set here start with
# fbk_ so they never clobber the calling script's variables.
fbk_stamp() {
  fbk_random=$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
  echo "$1-$(date -u +%Y%m%dT%H%M%SZ)-$fbk_random"
}

# fbk_blob KIND < stream: one object, for small streams (configuration archives).
fbk_blob() {
  fbk_name="$(fbk_stamp "$1").cms"
  fbk_encrypt > "$WORK/blob" || { fbk_log "encryption of $1 failed"; FAILED=$((FAILED + 1)); return 1; }
  fbk_upload "$WORK/blob" "$fbk_name"
  rm -f "$WORK/blob"
}

# fbk_parts KIND < stream: cut into PART_SIZE parts, each encrypted and
# uploaded, then a manifest listing every part's size and SHA-256, last.
fbk_parts() {
  fbk_set=$(fbk_stamp "$1")
  fbk_block=65536
  fbk_count=$(( (PART_SIZE + fbk_block - 1) / fbk_block ))
  fbk_n=0
  : > "$WORK/manifest.body"
  while :; do
    dd bs=$fbk_block count=$fbk_count iflag=fullblock of="$WORK/part" 2>/dev/null
    [ -s "$WORK/part" ] || break
    fbk_n=$((fbk_n + 1))
    fbk_part=$(printf '%s.part%04d.cms' "$fbk_set" "$fbk_n")
    fbk_encrypt < "$WORK/part" > "$WORK/part.cms" || { fbk_log "encryption of $fbk_part failed"; FAILED=$((FAILED + 1)); return 1; }
    fbk_size=$(wc -c < "$WORK/part.cms" | tr -d ' ')
    fbk_sum=$(sha256sum "$WORK/part.cms" | cut -d' ' -f1)
    fbk_upload "$WORK/part.cms" "$fbk_part" || return 1
    echo "part $fbk_n $fbk_size $fbk_sum" >> "$WORK/manifest.body"
    rm -f "$WORK/part" "$WORK/part.cms"
  done
  { echo "fbk-blob-manifest 1"; cat "$WORK/manifest.body"; echo "parts $fbk_n"; } > "$WORK/manifest"
  fbk_upload "$WORK/manifest" "$fbk_set.manifest"
}

fbk_finish() {
  fbk_log "$UPLOADED objects uploaded, $FAILED failed"
  [ "$FAILED" = 0 ]
}
