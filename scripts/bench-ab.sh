#!/usr/bin/env bash
# Side-by-side write benchmark of two builds, alternated A B A B in one sitting (this machine's disk and CPU drift
# between sessions, so only paired figures mean anything). Each round starts a fresh 3-node cluster with that
# build's sutra-node, runs `sutra bench --mix write` at each concurrency, and stops it.
# Usage: scripts/bench-ab.sh OLD_BIN_DIR NEW_BIN_DIR [ROUNDS] [DURATION]   (bin dirs hold sutra and sutra-node)
set -euo pipefail
old=$1; new=$2; rounds=${3:-3}; duration=${4:-10}
out=${BENCH_OUT:-/tmp/sutra-bench-ab}
mkdir -p "$out"
for r in $(seq 1 "$rounds"); do
  for side in old new; do
    bin=$([ "$side" = old ] && echo "$old" || echo "$new")
    data=$(mktemp -d /tmp/sutra-ab-XXXX)
    "$bin/sutra" cluster up --data "$data" --base-port 7600 >/dev/null
    for c in 64 256 1; do
      res=$("$bin/sutra" bench --data "$data" --duration "$duration" --concurrency "$c" --mix write --json)
      echo "round=$r side=$side concurrency=$c $res" | tee -a "$out/results.txt"
    done
    "$bin/sutra" cluster down --data "$data" >/dev/null || true
    rm -rf "$data"
  done
done
