#!/usr/bin/env bash
# Catch-up of a replaced replica: a loaded three-node cluster loses node 3's disk (its data directory is deleted
# and it starts empty: `sutra node restart 3 --wipe-data`); it comes back through snapshots streamed in chunks,
# then the log. Prints the time until node 3 has applied what every shard's leader had committed, the bytes
# streamed and their rate, and the cluster's write throughput while it catches up next to the same cluster's
# throughput just before (the same bench, the same seconds).
#
#   scripts/bench-catchup.sh [BIN_DIR] [KEYS] [LOAD_SECONDS] [CHUNK_BYTES]
#   defaults: .build/release 1000000 150 524288
#   NODE_BIN=path/to/sutra-node runs the nodes from another build (A/B against an older one; the CLI stays BIN_DIR's).
#
# Loopback, its own data directory and ports (8400+); stops every node it started (cluster down) on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${1:-.build/release}"
KEYS="${2:-1000000}"
LOAD="${3:-150}"
CHUNK="${4:-524288}"
WORK="$(mktemp -d /tmp/sutra-catchup-XXXXXX)"
DATA="$WORK/cluster"
cleanup() { "$BIN/sutra" cluster down --data "$DATA" >/dev/null 2>&1 || true; rm -rf "$WORK"; }
trap cleanup EXIT

"$BIN/sutra" cluster up --data "$DATA" --base-port 8400 --no-auth --dimension 4 --shards 4 --node-binary "${NODE_BIN:-$BIN/sutra-node}" -- \
    --snapshot-chunk-bytes "$CHUNK" >/dev/null
HTTP1=8501; HTTP3=8503
echo "==> load: $LOAD s of writes of 100 B over $KEYS keys (64 clients)"
"$BIN/sutra" bench --data "$DATA" --duration "$LOAD" --keys "$KEYS" --concurrency 64 --value-size 100 --json >"$WORK/load.json"
concepts=$(curl -s "http://127.0.0.1:$HTTP1/v1/cluster" | python3 -c 'import json,sys; print(sum(s["concepts"] for s in json.load(sys.stdin)["shards"]))')
# Every shard snapshotted and its log compacted: node 3 can only come back through the snapshots.
curl -s -X POST "http://127.0.0.1:$HTTP1/v1/flush?compact=log" >/dev/null
curl -s -X POST "http://127.0.0.1:8502/v1/flush?compact=log" >/dev/null
echo "==> $concepts concepts; throughput before (10 s):"
"$BIN/sutra" bench --data "$DATA" --duration 10 --keys "$KEYS" --concurrency 64 --value-size 100 --json >"$WORK/before.json"

caught_up() {
    python3 - "$HTTP1" "$HTTP3" <<'EOF'
import json, sys, urllib.request
def view(port):
    return json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/cluster", timeout=2))["shards"]
# Each shard's commit index at its leader first, node 3's applied indexes after (the leaders move on meanwhile).
try:
    commits = {}
    for s in view(sys.argv[1]):
        leader = s["leader"]
        if leader == 0:
            sys.exit(1)
        commits[s["shard"]] = view(8500 + leader)[s["shard"]]["commit_index"]
    three = view(sys.argv[2])
except Exception:
    sys.exit(1)
sys.exit(0 if all(t["applied_index"] >= commits[t["shard"]] for t in three) else 1)
EOF
}

echo "==> node 3 loses its disk; throughput while it catches up (10 s, from the restart):"
start=$(date +%s.%N)
"$BIN/sutra" bench --data "$DATA" --duration 10 --keys "$KEYS" --concurrency 64 --value-size 100 --json >"$WORK/during.json" &
bench=$!
"$BIN/sutra" node restart 3 --data "$DATA" --wipe-data >/dev/null
until caught_up; do sleep 0.1; done
end=$(date +%s.%N)
wait "$bench"
metrics3=$(curl -s "http://127.0.0.1:$HTTP3/metrics")
bytes=$(echo "$metrics3" | awk '/^sutra_snapshot_stream_bytes_received_total/ {s += $2} END {print s + 0}')
streams=$(echo "$metrics3" | awk '/^sutra_snapshot_streams_received_total/ {s += $2} END {print s + 0}')
python3 - "$WORK" "$start" "$end" "$bytes" "$streams" "$concepts" <<'EOF'
import json, sys
work, start, end, nbytes, streams, concepts = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), sys.argv[5], sys.argv[6]
def wps(name):
    d = json.load(open(f"{work}/{name}.json"))
    return d["ops_per_s"]
secs = end - start
before, during = wps("before"), wps("during")
print(f"catch-up of node 3 ({concepts} concepts in the cluster): {secs:.1f} s from the restart until every shard applied its leader's commit")
print(f"streamed: {streams} snapshots, {nbytes / 1e6:.1f} MB, {nbytes / 1e6 / secs:.1f} MB/s over the catch-up")
print(f"writes/s: {before:.0f} before, {during:.0f} during (10 s from the restart): {100 * during / before if before else 0:.0f}%")
EOF
