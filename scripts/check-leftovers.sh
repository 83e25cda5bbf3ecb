#!/bin/sh
# After the test suite: no server a fixture started may still run. Fixtures
# stop what they start, and a watchdog stops nginx once the test process is
# gone; this gives the watchdogs a few seconds, then names what is left.
set -u
for _ in 1 2 3 4 5 6 7 8 9 10; do
  left=$(pgrep -af 'nginx: master process nginx -p [^ ]*/fbk-test-|fault_proxy.py|s3_server.py' || true)
  [ -z "$left" ] && exit 0
  sleep 1
done
echo "check-leftovers: processes started by the tests are still running:" >&2
echo "$left" >&2
exit 1
