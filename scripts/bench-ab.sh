#!/usr/bin/env bash
# Side-by-side write benchmark of two sides, alternated A B A B in one sitting (this machine's disk and CPU drift
# between sessions, so only paired figures mean anything). A side is a build (a bin dir holding sutra and
# sutra-node) and, optionally, extra node flags. Each round starts a fresh 3-node cluster for that side, runs
# `sutra bench --mix write` at each concurrency, and stops it; at the end it prints each side's medians, the
# ratio of the medians and the median of each round's B/A (robust to drift between rounds), for writes/s, p50 and
# the nodes' CPU time per write (utime + stime of the three node processes over the run, per acknowledged write).
# Usage: scripts/bench-ab.sh OLD_BIN_DIR NEW_BIN_DIR [ROUNDS] [DURATION]
#   env: A_FLAGS / B_FLAGS (extra sutra-node flags of each side), A_UP / B_UP (extra `sutra cluster up` options of
#        each side, e.g. --no-auth), A_NAME / B_NAME (labels, default old / new),
#        CONCURRENCIES (default "64 256 1"), BENCH_OUT (results directory)
set -euo pipefail
a_bin=$1; b_bin=$2; rounds=${3:-3}; duration=${4:-10}
a_name=${A_NAME:-old}; b_name=${B_NAME:-new}
out=${BENCH_OUT:-/tmp/sutra-bench-ab}
mkdir -p "$out"; : > "$out/results.txt"
# utime + stime of the given processes, in clock ticks (/proc/PID/stat fields 14 and 15).
node_cpu_ticks() { local t=0 p; for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo "$t"; }
hz=$(getconf CLK_TCK)
for r in $(seq 1 "$rounds"); do
  for side in a b; do
    if [ "$side" = a ]; then bin=$a_bin; name=$a_name; flags=${A_FLAGS:-}; up=${A_UP:-}
    else bin=$b_bin; name=$b_name; flags=${B_FLAGS:-}; up=${B_UP:-}; fi
    data=$(mktemp -d /tmp/sutra-ab-XXXX)
    # shellcheck disable=SC2086 # flags are words
    "$bin/sutra" cluster up --data "$data" --base-port 7600 $up ${flags:+-- $flags} >/dev/null
    pids=$(pgrep -f "sutra-node.*$data" | tr '\n' ' ')
    for c in ${CONCURRENCIES:-64 256 1}; do
      before=$(node_cpu_ticks $pids)
      res=$("$bin/sutra" bench --data "$data" --duration "$duration" --concurrency "$c" --mix write --json)
      after=$(node_cpu_ticks $pids)
      echo "round=$r side=$name concurrency=$c cpu_ticks=$((after - before)) $res" | tee -a "$out/results.txt"
    done
    "$bin/sutra" cluster down --data "$data" >/dev/null || true
    rm -rf "$data"
  done
done
python3 - "$out/results.txt" "$a_name" "$b_name" "$hz" <<'PY'
import json, re, statistics, sys
path, a, b, hz = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
rows = {}
for line in open(path):
    m = re.match(r"round=(\d+) side=(\S+) concurrency=(\d+) cpu_ticks=(\d+) (.*)", line.strip())
    if m:
        r = json.loads(m[5])
        r["round"] = int(m[1])
        # The nodes' CPU time per acknowledged write (all three processes), microseconds.
        r["node_cpu_us_per_op"] = int(m[4]) / hz * 1e6 / max(r["ops"], 1)
        rows.setdefault((m[2], int(m[3])), []).append(r)
def value(r, key): return r["latency_ms"]["p50"] if key == "p50_ms" else r[key]
def med(side, c, key):
    vals = [value(r, key) for r in rows.get((side, c), [])]
    return statistics.median(vals) if vals else float("nan")
def paired(c, key):
    # Each round's B/A: robust to the machine drifting between rounds (a and b of one round run back to back).
    by = {r["round"]: value(r, key) for r in rows.get((a, c), [])}
    ratios = [value(r, key) / by[r["round"]] for r in rows.get((b, c), []) if by.get(r["round"])]
    return statistics.median(ratios) if ratios else float("nan")
for c in sorted({c for _, c in rows}, reverse=True):
    for key in ("ops_per_s", "p50_ms", "node_cpu_us_per_op"):
        x, y = med(a, c, key), med(b, c, key)
        print(f"concurrency {c:>3} {key:>18}: {a} {x:10.3f}  {b} {y:10.3f}  ratio of medians {y / x:6.3f}  median paired ratio {paired(c, key):6.3f}")
PY
