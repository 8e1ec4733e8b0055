#!/usr/bin/env bash
# Replacing a dead machine: a loaded three-node cluster (mutual TLS between nodes) loses node 3 for good (kill -9);
# a new node 4 joins (`sutra node join 4`) and takes every replica node 3 held (`sutra node replace 3 --with 4`):
# each shard's replica moves through Raft — a learner catching up from a snapshot streamed in chunks, then the
# log, promoted, node 3's replica removed. Prints the time from the replace until every shard's replicas are
# nodes 1, 2, 4 with no move left and node 4 has applied what every leader committed, the bytes streamed and
# their rate, and the write throughput in the 10 s from the replace next to the same cluster's throughput healthy
# (three nodes, 10 s before the kill) and with node 3 dead (two nodes, 10 s before the replace). On 2 cores the
# nodes are CPU-bound: two live processes write faster than three, so the second ratio understates the move.
#
#   scripts/bench-replace.sh [BIN_DIR] [KEYS] [LOAD_SECONDS] [CHUNK_BYTES]
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
WORK="$(mktemp -d /tmp/sutra-replace-XXXXXX)"
DATA="$WORK/cluster"
cleanup() { "$BIN/sutra" cluster down --data "$DATA" >/dev/null 2>&1 || true; rm -rf "$WORK"; }
trap cleanup EXIT

"$BIN/sutra" cluster up --data "$DATA" --base-port 8400 --no-auth --dimension 4 --shards 4 --node-binary "${NODE_BIN:-$BIN/sutra-node}" -- \
    --snapshot-chunk-bytes "$CHUNK" >/dev/null
HTTP1=8501; HTTP4=8504
echo "==> load: $LOAD s of writes of 100 B over $KEYS keys (64 clients)"
"$BIN/sutra" bench --data "$DATA" --duration "$LOAD" --keys "$KEYS" --concurrency 64 --value-size 100 --json >"$WORK/load.json"
concepts=$(curl -s "http://127.0.0.1:$HTTP1/v1/cluster" | python3 -c 'import json,sys; print(sum(s["concepts"] for s in json.load(sys.stdin)["shards"]))')
pid3=$(python3 -c "import json,sys; print([n['pid'] for n in json.load(open(sys.argv[1]))['nodes'] if n['id'] == 3][0])" "$DATA/cluster.json")
echo "==> $concepts concepts; throughput of the healthy cluster (10 s):"
"$BIN/sutra" bench --data "$DATA" --duration 10 --keys "$KEYS" --concurrency 64 --value-size 100 --json >"$WORK/healthy.json"
kill -9 "$pid3"
echo "==> node 3 killed for good. Throughput without it (10 s):"
sleep 2
"$BIN/sutra" bench --data "$DATA" --duration 10 --keys "$KEYS" --concurrency 64 --value-size 100 --json >"$WORK/before.json"
"$BIN/sutra" node join 4 --data "$DATA" >/dev/null

moved() {
    python3 - "$HTTP1" "$HTTP4" <<'PY'
import json, sys, urllib.request
def view(port):
    return json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/cluster", timeout=2))
try:
    one = view(sys.argv[1])
    if any(s["voters"] != [1, 2, 4] or "move" in s for s in one["map"]["shards"]):
        sys.exit(1)
    commits = {}
    for s in one["shards"]:
        if s["leader"] == 0:
            sys.exit(1)
        commits[s["shard"]] = view(8500 + s["leader"])["shards"][s["shard"]]["commit_index"]
    four = view(sys.argv[2])["shards"]
except Exception:
    sys.exit(1)
sys.exit(0 if all(t["applied_index"] >= commits[t["shard"]] for t in four) else 1)
PY
}

echo "==> node 3 replaced by node 4; throughput during the moves (10 s from the replace):"
start=$(date +%s.%N)
"$BIN/sutra" bench --data "$DATA" --duration 10 --keys "$KEYS" --concurrency 64 --value-size 100 --json >"$WORK/during.json" &
bench=$!
"$BIN/sutra" node replace 3 --with 4 --data "$DATA" >/dev/null
until moved; do sleep 0.1; done
end=$(date +%s.%N)
wait "$bench"
metrics4=$(curl -s "http://127.0.0.1:$HTTP4/metrics")
bytes=$(echo "$metrics4" | awk '/^sutra_snapshot_stream_bytes_received_total/ {s += $2} END {print s + 0}')
streams=$(echo "$metrics4" | awk '/^sutra_snapshot_streams_received_total/ {s += $2} END {print s + 0}')
"$BIN/sutra" node remove 3 --data "$DATA" >/dev/null
python3 - "$WORK" "$start" "$end" "$bytes" "$streams" "$concepts" <<'PY'
import json, sys
work, start, end, nbytes, streams, concepts = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), sys.argv[5], sys.argv[6]
def wps(name):
    return json.load(open(f"{work}/{name}.json"))["ops_per_s"]
secs = end - start
healthy, before, during = wps("healthy"), wps("before"), wps("during")
print(f"replace node 3 by node 4 ({concepts} concepts): {secs:.1f} s from `sutra node replace` until every shard is on nodes 1, 2, 4 and node 4 applied every leader's commit")
print(f"streamed to node 4: {streams} snapshots, {nbytes / 1e6:.1f} MB, {nbytes / 1e6 / secs:.1f} MB/s over the move")
print(f"writes/s: {healthy:.0f} healthy (3 nodes), {before:.0f} with node 3 dead (no move), {during:.0f} during (10 s from the replace): "
      f"{100 * during / healthy if healthy else 0:.0f}% of healthy, {100 * during / before if before else 0:.0f}% of node-3-dead")
PY
