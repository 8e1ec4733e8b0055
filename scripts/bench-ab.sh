#!/usr/bin/env bash
# Side-by-side write benchmark of two sides, alternated A B A B in one sitting (this machine's disk and CPU drift
# between sessions, so only paired figures mean anything). A side is a build (a bin dir holding sutra and
# sutra-node) and, optionally, extra node flags. Each round starts a fresh 3-node cluster for that side, runs
# `sutra bench --mix write` at each concurrency, and stops it; at the end it prints each side's medians and the
# B/A ratio.
# Usage: scripts/bench-ab.sh OLD_BIN_DIR NEW_BIN_DIR [ROUNDS] [DURATION]
#   env: A_FLAGS / B_FLAGS (extra sutra-node flags of each side), A_UP / B_UP (extra `sutra cluster up` options of
#        each side, e.g. --no-auth), A_NAME / B_NAME (labels, default old / new),
#        CONCURRENCIES (default "64 256 1"), BENCH_OUT (results directory)
set -euo pipefail
a_bin=$1; b_bin=$2; rounds=${3:-3}; duration=${4:-10}
a_name=${A_NAME:-old}; b_name=${B_NAME:-new}
out=${BENCH_OUT:-/tmp/sutra-bench-ab}
mkdir -p "$out"; : > "$out/results.txt"
for r in $(seq 1 "$rounds"); do
  for side in a b; do
    if [ "$side" = a ]; then bin=$a_bin; name=$a_name; flags=${A_FLAGS:-}; up=${A_UP:-}
    else bin=$b_bin; name=$b_name; flags=${B_FLAGS:-}; up=${B_UP:-}; fi
    data=$(mktemp -d /tmp/sutra-ab-XXXX)
    # shellcheck disable=SC2086 # flags are words
    "$bin/sutra" cluster up --data "$data" --base-port 7600 $up ${flags:+-- $flags} >/dev/null
    for c in ${CONCURRENCIES:-64 256 1}; do
      res=$("$bin/sutra" bench --data "$data" --duration "$duration" --concurrency "$c" --mix write --json)
      echo "round=$r side=$name concurrency=$c $res" | tee -a "$out/results.txt"
    done
    "$bin/sutra" cluster down --data "$data" >/dev/null || true
    rm -rf "$data"
  done
done
python3 - "$out/results.txt" "$a_name" "$b_name" <<'PY'
import json, re, statistics, sys
path, a, b = sys.argv[1:4]
rows = {}
for line in open(path):
    m = re.match(r"round=(\d+) side=(\S+) concurrency=(\d+) (.*)", line.strip())
    if m: rows.setdefault((m[2], int(m[3])), []).append(json.loads(m[4]))
def med(side, c, key):
    vals = [r["latency_ms"]["p50"] if key == "p50_ms" else r[key] for r in rows.get((side, c), [])]
    return statistics.median(vals) if vals else float("nan")
for c in sorted({c for _, c in rows}, reverse=True):
    for key in ("ops_per_s", "p50_ms"):
        x, y = med(a, c, key), med(b, c, key)
        print(f"concurrency {c:>3} {key:>10}: {a} {x:10.3f}  {b} {y:10.3f}  ratio {y / x:6.3f}  diff {y - x:+.3f}")
PY
