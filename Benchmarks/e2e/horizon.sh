#!/bin/sh
# The extra upload the reuse horizon and pack renewal cause in steady state
# (issue: retention). One client, one local mirror, the e2e tree at SCALE,
# then DAYS simulated days (FBK_TEST_NOW), each applying the S3 change set
# with that day's own content (dataset.py --change --day N) and taking a
# snapshot. Prints, over the last 30 days, the bytes stored again
# (renewed_bytes: horizon, re-keying and partly dead packs) against the
# new bytes, and the weekly renewal marks.
#
#   Benchmarks/e2e/horizon.sh FBK [SCALE] [DAYS]      e.g. .build/release/fbk 0.25 60
set -eu
FBK=$(realpath "$1"); SCALE=${2:-0.25}; DAYS=${3:-60}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/fbk-horizon-XXXXXX")
trap 'rm -rf "$WORK"' EXIT
python3 "$ROOT/Benchmarks/e2e/dataset.py" "$WORK/data" "$SCALE"
FBK_PASSPHRASE=bench "$FBK" keygen --out "$WORK/keys" --type p384 --allow-short-passphrase >/dev/null
"$FBK" init --config "$WORK/fbk.conf" --client bench --recipient "$WORK/keys/recipient.pem" \
  --mirror "file://$WORK/mirror/bench/" --state "$WORK/state" "$WORK/data" >/dev/null
ORIGIN=$(( $(date +%s) / 86400 * 86400 - (DAYS + 5) * 86400 ))
day=0
: > "$WORK/days.jsonl"
while [ "$day" -lt "$DAYS" ]; do
  [ "$day" -gt 0 ] && python3 "$ROOT/Benchmarks/e2e/dataset.py" "$WORK/data" "$SCALE" --change --day "$day" >/dev/null
  # Files must be older than the files cache's settle time, as on a real day.
  sleep 2
  FBK_TEST_NOW=$(( ORIGIN + day * 86400 + 10800 )) "$FBK" snapshot --config "$WORK/fbk.conf" --json > "$WORK/day.json"
  python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))))' "$WORK/day.json" >> "$WORK/days.jsonl"
  day=$((day + 1))
done
python3 - "$WORK/days.jsonl" "$DAYS" <<'PY'
import json, sys
days = [json.loads(l) for l in open(sys.argv[1])]
last = days[-30:] if len(days) > 30 else days[1:]
new = sum(d["new_bytes"] for d in last)
renewed = sum(d.get("renewed_bytes", 0) for d in last)
stored = sum(d["stored_bytes"] for d in last)
marked = sum(d.get("bytes_marked_for_renewal", 0) for d in last)
print("horizon steady state: %d days; last %d days: new %.1f MiB (stored %.1f MiB compressed), stored again %.1f MiB = %.2f %% of the new bytes; marked for renewal %.1f MiB in %d packs"
      % (len(days), len(last), new / 2**20, stored / 2**20, renewed / 2**20, 100.0 * renewed / max(new, 1), marked / 2**20,
         sum(d.get("packs_marked_for_renewal", 0) for d in last)))
print("per day (renewed MiB): " + ", ".join("%.1f" % (d.get("renewed_bytes", 0) / 2**20) for d in days))
PY
