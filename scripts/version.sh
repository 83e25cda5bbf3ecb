#!/bin/sh
# Prints the version of the build from this tree: the base version in
# Sources/CLinux/version.h, as it is when HEAD is tagged v+BASE and the
# tree is clean, else BASE+gitCOUNT.HASH (COUNT: commits up to HEAD, so
# later builds sort later, for dpkg too), with .dirty for uncommitted
# changes. Without git (a source tarball): BASE.
set -eu
cd "$(dirname "$0")/.."
base=$(sed -n 's/^#define FBK_BASE_VERSION "\(.*\)"$/\1/p' Sources/CLinux/version.h)
[ -n "$base" ] || { echo "version.sh: no FBK_BASE_VERSION in Sources/CLinux/version.h" >&2; exit 1; }
if ! git rev-parse --git-dir >/dev/null 2>&1; then echo "$base"; exit 0; fi
dirty=
git diff --quiet HEAD -- 2>/dev/null || dirty=.dirty
if [ "$(git tag --points-at HEAD 2>/dev/null | grep -Fx "v$base")" = "v$base" ] && [ -z "$dirty" ]; then
  echo "$base"
else
  echo "$base+git$(git rev-list --count HEAD).$(git rev-parse --short=7 HEAD)$dirty"
fi
