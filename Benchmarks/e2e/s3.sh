#!/bin/sh
# The S3 variant of S1-S4 (make bench-e2e runs it after run.sh): fbk to two
# S3 buckets (two moto_server processes on loopback, Tests/Fixtures/s3_server.py,
# with Object Lock and deploy/s3's policies enforced) beside fbk to two
# nginx WebDAV mirrors (deploy/nginx), on the same dataset, in the same run.
#   S1 first snapshot, S2 rerun without change, S3 after a fixed change set,
#   S4 full restore (WebDAV: from a mirror's operator port; S3: from a bucket).
# Figures: fbk's wall time, CPU and peak RSS; moto's own CPU, reported apart
# (it is a Python server: its cost is not fbk's). The goal: each S3 wall
# time at most 1.3x the WebDAV one.
# Usage: Benchmarks/e2e/s3.sh [SCALE]   (1.0: about 1.5 GB)
set -eu
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
SCALE=${1:-1.0}
FBK=$ROOT/.build/release/fbk
WORK=$(mktemp -d "${FBK_BENCH_DIR:-/var/tmp}/fbk-e2e-s3.XXXXXX")
RESULTS=${FBK_BENCH_S3_RESULTS:-$ROOT/Benchmarks/e2e/results-s3.json}
MOTO_PIDS=""
cleanup() {
  for p in "$WORK"/nginx*/nginx.pid; do [ -f "$p" ] && kill "$(cat "$p")" 2>/dev/null || true; done
  for p in $MOTO_PIDS; do kill "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
export FBK_PASSPHRASE=bench

echo "== generating the dataset (scale $SCALE)"
python3 Benchmarks/e2e/dataset.py "$WORK/data" "$SCALE"

. Benchmarks/e2e/lib.sh
start_moto() {  # DIR PORT BUCKET
  mkdir -p "$1"
  python3 Tests/Fixtures/s3_server.py "$2" "$1" "$3" > "$1/moto.log" 2>&1 &
  MOTO_PIDS="$MOTO_PIDS $!"
  echo $! > "$1/pid"
  i=0; while [ ! -f "$1/ready" ]; do i=$((i + 1)); [ $i -gt 600 ] && { cat "$1/moto.log"; exit 1; }; sleep 0.1; done
}
P0=$(port); O0=$(port); P1=$(port); O1=$(port); M0=$(port); M1=$(port)
start_nginx "$WORK/nginx0" "$P0" "$O0"
start_nginx "$WORK/nginx1" "$P1" "$O1"
start_moto "$WORK/moto0" "$M0" bench0
start_moto "$WORK/moto1" "$M1" bench1
moto_cpu() {  # total user+sys seconds of both moto processes
  for d in "$WORK/moto0" "$WORK/moto1"; do awk '{print $14 + $15}' "/proc/$(cat "$d/pid")/stat"; done |
    awk -v hz="$(getconf CLK_TCK)" '{s += $1} END {printf "%.1f", s / hz}'
}

"$FBK" keygen --out "$WORK/keys" --type p384 --allow-short-passphrase >/dev/null
printf 'bench-pw\n' > "$WORK/password"; chmod 600 "$WORK/password"
printf 'operator-pw\n' > "$WORK/operator-password"
cp "$WORK/moto0/fbk-client.credentials" "$WORK/client0"; cp "$WORK/moto1/fbk-client.credentials" "$WORK/client1"
"$FBK" init --config "$WORK/dav/fbk.conf" --client bench --recipient "$WORK/keys/recipient.pem" \
  --mirror "http://127.0.0.1:$P0/bench/" --mirror "http://127.0.0.1:$P1/bench/" \
  --password-file "$WORK/password" --state "$WORK/dav-state" "$WORK/data" >/dev/null
# Two buckets on two servers, each with its own credentials: init takes one
# set of --s3-* options, so the second mirror's lines are edited in.
"$FBK" init --config "$WORK/s3/fbk.conf" --client bench --recipient "$WORK/keys/recipient.pem" \
  --mirror "s3://bench0/fleet/bench/" --mirror "s3://bench1/fleet/bench/" --s3-endpoint "http://127.0.0.1:$M0" \
  --s3-credentials "$WORK/client0" --s3-object-lock compliance --state "$WORK/s3-state" "$WORK/data" >/dev/null
python3 - "$WORK/s3/fbk.conf" "$M0" "$M1" "$WORK/client0" "$WORK/client1" <<'PY'
import sys
path, m0, m1, c0, c1 = sys.argv[1:]
text = open(path).read().split("\n")
out, second = [], False
for line in text:
    if 's3://bench1/' in line:
        second = True
    elif line.startswith("  - url:"):
        second = False
    if second:
        line = line.replace(f"127.0.0.1:{m0}", f"127.0.0.1:{m1}").replace(c0, c1)
    out.append(line)
open(path, "w").write("\n".join(out))
PY

: > "$WORK/rows"
measure() {  # KIND SCENARIO COMMAND...
  kind=$1; scenario=$2; shift 2
  sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
  before=$(moto_cpu)
  /usr/bin/time -f '%e %U %S %M' -o "$WORK/time" "$@" > "$WORK/$kind-$scenario.out" 2>&1 || { echo "$kind $scenario failed"; tail -5 "$WORK/$kind-$scenario.out"; exit 1; }
  after=$(moto_cpu)
  read -r wall user sys rss < "$WORK/time"
  moto=$(echo "$after - $before" | bc)
  echo "$kind $scenario $wall $user $sys $rss $moto" >> "$WORK/rows"
  printf '%-7s %-3s wall %7.1f s  cpu %7.1f s  rss %6d MiB  moto cpu %6.1f s\n' "$kind" "$scenario" "$wall" "$(echo "$user + $sys" | bc)" "$((rss / 1024))" "$moto"
}
for s in S1 S2; do
  measure webdav "$s" "$FBK" snapshot --config "$WORK/dav/fbk.conf" --json
  measure s3 "$s" "$FBK" snapshot --config "$WORK/s3/fbk.conf" --json
done
python3 Benchmarks/e2e/dataset.py "$WORK/data" "$SCALE" --change > /dev/null
measure webdav S3 "$FBK" snapshot --config "$WORK/dav/fbk.conf" --json
measure s3 S3 "$FBK" snapshot --config "$WORK/s3/fbk.conf" --json
measure webdav S4 "$FBK" restore --from "http://127.0.0.1:$O0/" --user operator --password-file "$WORK/operator-password" \
  --client bench --signing-key "$WORK/dav/signing.pub" --key "$WORK/keys/private.pem" latest --target "$WORK/restore-dav"
measure s3 S4 "$FBK" restore --from "s3://bench0/fleet/" --s3-endpoint "http://127.0.0.1:$M0" --s3-credentials "$WORK/moto0/fbk-operator.credentials" \
  --client bench --signing-key "$WORK/s3/signing.pub" --key "$WORK/keys/private.pem" latest --target "$WORK/restore-s3"
diff -r --no-dereference "$WORK/data" "$WORK/restore-s3$WORK/data" >/dev/null && echo "fbk restore from S3: identical"

python3 - "$WORK/rows" "$SCALE" "$RESULTS" <<'PY'
import json, sys
rows, scale, out = sys.argv[1], float(sys.argv[2]), sys.argv[3]
runs = {}
for line in open(rows):
    kind, scenario, wall, user, sys_, rss, moto = line.split()
    runs.setdefault(scenario, {})[kind] = {"wall_s": float(wall), "cpu_s": float(user) + float(sys_), "peak_rss_kib": int(rss),
                                           "moto_cpu_s": float(moto)}
met = True
for scenario, r in sorted(runs.items()):
    ratio = r["s3"]["wall_s"] / max(r["webdav"]["wall_s"], 0.01)
    r["s3_over_webdav"] = round(ratio, 2)
    # Runs under a second are dominated by start-up; 1.3x of them is noise.
    ok = ratio <= 1.3 or r["s3"]["wall_s"] - r["webdav"]["wall_s"] < 0.5
    met = met and ok
    print("%s: S3 %.1f s vs WebDAV %.1f s = %.2fx (moto's own CPU %.1f s)%s" % (scenario, r["s3"]["wall_s"], r["webdav"]["wall_s"], ratio,
          r["s3"]["moto_cpu_s"], "" if ok else "  ABOVE 1.3x"))
json.dump({"scale": scale, "scenarios": runs, "goal_1_3x_met": met}, open(out, "w"), indent=2)
print("results written to", out)
PY
