#!/bin/sh
# The main job on an embedded default: chunk a real directory and report.
# (Replaced by a two-snapshot demo once `fbk snapshot` exists.)
set -eu
FBK=${1:-.build/release/fbk}
TARGET=${FBK_DEMO_DIR:-/usr/share/doc}
echo "== fbk chunk $TARGET"
"$FBK" chunk "$TARGET" | tail -n 1
