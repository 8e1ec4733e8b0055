#!/usr/bin/env bash
# The cost of mutual TLS on peer links: one build, two settings alternated A B A B in one sitting (the machine's
# disk and CPU drift between sessions, so only paired figures mean anything). Each round starts a fresh 3-node
# cluster — `sutra cluster up` (mutual TLS, the default) or the same with `-- --insecure-peers` — runs
# `sutra bench --mix write` at 64 clients and at 1 client, and stops it. Prints medians and the ratio.
# Usage: scripts/bench-peer-tls.sh BIN_DIR [ROUNDS] [DURATION]   (BIN_DIR holds sutra and sutra-node, e.g. .build/release)
set -euo pipefail
bin=$1; rounds=${2:-3}; duration=${3:-10}
out=${BENCH_OUT:-/tmp/sutra-bench-peer-tls}
mkdir -p "$out"; : > "$out/results.txt"
for r in $(seq 1 "$rounds"); do
  for side in tls insecure; do
    data=$(mktemp -d /tmp/sutra-tlsab-XXXX)
    if [ "$side" = tls ]; then "$bin/sutra" cluster up --data "$data" --base-port 7600 >/dev/null
    else "$bin/sutra" cluster up --data "$data" --base-port 7600 -- --insecure-peers >/dev/null; fi
    for c in 64 1; do
      res=$("$bin/sutra" bench --data "$data" --duration "$duration" --concurrency "$c" --mix write --json)
      echo "round=$r side=$side concurrency=$c $res" | tee -a "$out/results.txt"
    done
    "$bin/sutra" cluster down --data "$data" >/dev/null || true
    rm -rf "$data"
  done
done
python3 - "$out/results.txt" <<'PY'
import json, re, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    m = re.match(r"round=(\d+) side=(\w+) concurrency=(\d+) (.*)", line.strip())
    if not m: continue
    rows.setdefault((m[2], int(m[3])), []).append(json.loads(m[4]))
def get(r, key):
    return r["latency_ms"]["p50"] if key == "p50_ms" else r[key]
def med(side, c, key):
    vals = [get(r, key) for r in rows.get((side, c), [])]
    return statistics.median(vals) if vals else float("nan")
for c in (64, 1):
    for key in ("ops_per_s", "p50_ms"):
        t, i = med("tls", c, key), med("insecure", c, key)
        print(f"concurrency {c:>3} {key:>12}: mTLS {t:10.3f}  insecure {i:10.3f}  ratio {t / i:6.3f}  diff {t - i:+.3f}")
PY
