#!/bin/sh
# Installs everything a fresh Debian 12 machine needs to build, test and run
# the demo of fbk. Idempotent: packages already present are not touched, and
# apt is only called when something is missing. This script is the single
# source of truth for the project's system dependencies; `make demo`,
# `make test`, `make bench` and `.ci/run` all go through it.
set -eu

PACKAGES="
  build-essential
  pkg-config
  libssl-dev
  libzstd-dev
  libcurl4-openssl-dev
  libsqlite3-dev
  libfuse3-dev
  fuse3
  libyaml-dev
  sqlite3
  libcrypt-dev
  systemd
  openssl
  zstd
  curl
  nginx
  libnginx-mod-http-dav-ext
  apache2
  rclone
  apache2-utils
  busybox
  python3
  python3-pip
  python3-cryptography
  time
  make
  util-linux
  procps
  mount
  dpkg-dev
  binutils
  lintian
  debootstrap
  man-db
"
# `--bench` adds the peers the benchmarks compare against.
if [ "${1:-}" = "--bench" ]; then
  PACKAGES="$PACKAGES borgbackup restic bc"
fi

missing=""
for p in $PACKAGES; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
    missing="$missing $p"
  fi
done

# The S3 tests' server (moto_server, a real S3 implementation in Python)
# comes from PyPI, for the python3 first on PATH (the one the tests run).
moto_installed() { python3 -c 'import moto.server, boto3, flask' >/dev/null 2>&1; }
install_moto() {
  if moto_installed; then return 0; fi
  echo "install-deps: installing moto[server] from PyPI"
  python3 -m pip install --quiet 'moto[server]==5.2.1' 2>/dev/null ||
    python3 -m pip install --quiet --break-system-packages 'moto[server]==5.2.1'
}

if [ -z "$missing" ]; then
  echo "install-deps: all system packages present"
  install_moto
  exit 0
fi

echo "install-deps: installing:$missing"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# shellcheck disable=SC2086
$SUDO apt-get install -y -q --no-install-recommends $missing
install_moto
