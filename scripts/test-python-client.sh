#!/usr/bin/env bash
# The Python client (clients/python) against real clusters: installs the package into a fresh venv offline
# (`pip install --no-index`: it has no dependency and builds with the standard library), then runs its tests
# from outside the source tree, so they import the installed copy:
#   tests/test_retries.py  the retry rules against scripted fake nodes (no cluster);
#   tests/test_client.py   a three-node cluster and a one-node client-TLS cluster that the tests start with
#                          `sutra cluster up` from $SUTRA_BIN on free loopback ports in 19400-20999 and stop
#                          by pid: every call through every node, retried writes applied once, a node killed
#                          with SIGKILL while the client keeps working, typed errors, tokens and roles, TLS.
# Exit 0 only if every test passed (and at least one ran); the last line is "python-client: N passed, N failed,
# N skipped". Bounded: the tests run under a hard timeout (PYCLIENT_BUDGET seconds, default 180); any node still
# running under this run's work directory afterwards (a run cut short) is killed by its pid.
#
# Usage: scripts/test-python-client.sh
#   env: SUTRA_BIN        directory holding sutra and sutra-node (default .build/debug)
#        PYTHON           the interpreter (default python3; 3.9 or later)
#        PYCLIENT_BUDGET  hard wall-time bound of the tests in seconds (default 180)
#        KEEP=1           keep the work directory (venv, cluster data and node logs)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
bin=${SUTRA_BIN:-$repo/.build/debug}
case "$bin" in /*) ;; *) bin=$repo/$bin ;; esac
python=${PYTHON:-python3}
budget=${PYCLIENT_BUDGET:-180}

work=$(mktemp -d "${TMPDIR:-/tmp}/sutra-pyclient-test.XXXXXX")
mkdir -p "$work/tmp"

# Nodes the tests started whose data lives under this run's directory and that still run (the tests stop their
# own; this is for a run killed by the timeout): SIGKILL by pid, then the directory goes.
cleanup() {
  local rc=$?
  local d pid
  for d in /proc/[0-9]*; do
    pid=${d#/proc/}
    [ "$pid" = "$$" ] && continue
    if tr '\0' '\n' < "$d/cmdline" 2>/dev/null | grep -qF -- "$work/tmp/"; then
      echo "test-python-client: node pid $pid was still running: killed"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  if [ -n "${KEEP:-}" ]; then echo "test-python-client: kept $work"; else rm -rf "$work"; fi
  exit "$rc"
}
trap cleanup EXIT

for b in sutra sutra-node; do
  [ -x "$bin/$b" ] || { echo "test-python-client: $bin/$b not found (build first, or set SUTRA_BIN)"; exit 1; }
done

echo "==> python client: install into a fresh venv (offline)"
"$python" -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet --no-index --disable-pip-version-check "$repo/clients/python"

echo "==> python client: tests (hard limit ${budget} s)"
cd "$work"
rc=0
TMPDIR="$work/tmp" SUTRA_BIN="$bin" PYTHONDONTWRITEBYTECODE=1 timeout --kill-after=10 "$budget" \
  "$work/venv/bin/python" - "$repo/clients/python/tests" <<'EOF' || rc=$?
import os, sys, time, unittest
import sutra
tests = sys.argv[1]
src = os.path.dirname(os.path.abspath(tests))
assert not os.path.abspath(sutra.__file__).startswith(src + os.sep), f"imported the source tree: {sutra.__file__}"
print(f"sutra {sutra.__version__} from {os.path.dirname(sutra.__file__)}", flush=True)
class Timed(unittest.TextTestResult):
    took = {}
    def startTest(self, test):
        self._t = time.monotonic()
        super().startTest(test)
    def stopTest(self, test):
        Timed.took[test.id()] = time.monotonic() - self._t
        super().stopTest(test)
t0 = time.monotonic()
suite = unittest.defaultTestLoader.discover(tests, top_level_dir=tests)
r = unittest.TextTestRunner(verbosity=2, stream=sys.stdout, resultclass=Timed).run(suite)
failed = len(r.failures) + len(r.errors) + len(r.unexpectedSuccesses)
skipped = len(r.skipped)
slow = sorted(Timed.took.items(), key=lambda kv: -kv[1])[:5]
print("slowest: " + ", ".join(f"{name.rsplit('.', 1)[-1]} {secs:.1f} s" for name, secs in slow))
print(f"python client tests: {time.monotonic() - t0:.1f} s (cluster start and stop included)")
print(f"python-client: {r.testsRun - failed - skipped} passed, {failed} failed, {skipped} skipped")
sys.exit(0 if r.wasSuccessful() and r.testsRun > 0 else 1)
EOF
if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
  echo "test-python-client: the tests did not finish within ${budget} s"
  echo "python-client: 0 passed, 1 failed"
fi
exit "$rc"
