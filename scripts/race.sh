#!/bin/sh
# The test suite with fbk and the tests built under ThreadSanitizer: every
# fbk the tests start reports each data race it runs into (two threads at
# the same memory, one writing, no lock between them). A Swift collection
# read while another thread grows it can free memory under the reader, and
# the heap corruption that follows shows up far from its cause; this finds
# the cause. The whole suite takes over 40 minutes on two cores; FILTER
# narrows it (a regular expression of suites or tests).
#
# Usage: scripts/race.sh [FILTER]
# FBK_RACE_BUILD: the build directory (default .build-tsan).
# Exit status: 0 when no race was reported, 1 when one was (each report is
# in the build directory's reports/, its summary printed), 2 when it could not run.
set -u
cd "$(dirname "$0")/.."
SWIFT=${SWIFT:-$(command -v swift 2>/dev/null || echo /opt/swift/usr/bin/swift)}
scratch=${FBK_RACE_BUILD:-.build-tsan}
reports=$(cd "$(dirname "$scratch")" && pwd)/$(basename "$scratch")/reports

"$SWIFT" build --build-tests --sanitize=thread --scratch-path "$scratch" || exit 2
rm -rf "$reports" && mkdir -p "$reports" || exit 2

# Reports go to files (one per process), not to the standard error the tests
# read; a process with a report still exits 66, which fails its test too.
# Tests that bound an fbk's memory fail under the sanitizer's shadow memory:
# only the reports decide.
set -- ${1:+--filter "$1"}
TSAN_OPTIONS="log_path=$reports/race halt_on_error=0 history_size=4" \
  "$SWIFT" test --skip-build --disable-xctest --scratch-path "$scratch" "$@" > "$scratch/test.log" 2>&1
echo "race: suite finished with status $? (its log: $scratch/test.log)"

found=$(ls "$reports" 2>/dev/null | wc -l)
if [ "$found" -eq 0 ]; then
  echo "race: no data race reported"
  exit 0
fi
echo "race: $found processes reported races:"
grep -h '^SUMMARY' "$reports"/* | sort | uniq -c | sort -rn
echo "race: the reports, with both threads' stacks: $reports"
exit 1
