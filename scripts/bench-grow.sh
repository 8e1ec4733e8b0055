#!/usr/bin/env bash
# Growing a loaded cluster: three nodes (three replicas of each of 4 shards: every node holds every shard) under
# load; a fourth machine joins (`sutra node join 4`) and `sutra rebalance` moves replicas onto it — each a Raft
# membership change of its shard (a learner catching up from a snapshot streamed in chunks, then the log,
# promoted, the most loaded node's replica removed) — until no two nodes differ by more than one replica. Prints
# the time from the rebalance until no move is left and node 4 has applied what the leaders of its shards
# committed, the bytes streamed to node 4 and their rate, and the write throughput in the 10 s from the rebalance
# next to the same four-node cluster's once settled (10 s, no move) and the three-node cluster's before it grew,
# and node 4's peak resident memory (VmHWM) and the longest its loop was held (sutra_loop_max_tick_gap_seconds).
# On 2 cores the nodes are CPU-bound: four processes write slower than three whatever the moves do.
#
#   scripts/bench-grow.sh [BIN_DIR] [KEYS] [LOAD_SECONDS] [CHUNK_BYTES]
#   defaults: .build/release 1000000 150 524288
#
# Loopback, its own data directory and ports (8600+); stops every node it started (cluster down) on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${1:-.build/release}"
KEYS="${2:-1000000}"
LOAD="${3:-150}"
CHUNK="${4:-524288}"
WORK="$(mktemp -d /tmp/sutra-grow-XXXXXX)"
DATA="$WORK/cluster"
cleanup() { "$BIN/sutra" cluster down --data "$DATA" >/dev/null 2>&1 || true; rm -rf "$WORK"; }
trap cleanup EXIT

"$BIN/sutra" cluster up --data "$DATA" --base-port 8600 --no-auth --dimension 4 --shards 4 -- \
    --snapshot-chunk-bytes "$CHUNK" >/dev/null
HTTP1=8701; HTTP4=8704
echo "==> load: $LOAD s of writes of 100 B over $KEYS keys (64 clients)"
"$BIN/sutra" bench --data "$DATA" --duration "$LOAD" --keys "$KEYS" --concurrency 64 --value-size 100 --json >"$WORK/load.json"
concepts=$(curl -s "http://127.0.0.1:$HTTP1/v1/cluster" | python3 -c 'import json,sys; print(sum(s["concepts"] for s in json.load(sys.stdin)["shards"]))')
echo "==> $concepts concepts; throughput of the three-node cluster (10 s):"
"$BIN/sutra" bench --data "$DATA" --duration 10 --keys "$KEYS" --concurrency 64 --value-size 100 --json >"$WORK/three.json"
"$BIN/sutra" node join 4 --data "$DATA" >/dev/null
sleep 2

settled() {
    python3 - "$HTTP1" "$HTTP4" <<'PY'
import json, sys, urllib.request
def view(port):
    return json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/cluster", timeout=2))
try:
    one = view(sys.argv[1])
    shards = one["map"]["shards"]
    if any("move" in s for s in shards):
        sys.exit(1)
    load = {n: sum(n in s["voters"] for s in shards) for n in (1, 2, 3, 4)}
    if max(load.values()) - min(load.values()) > 1:
        sys.exit(1)
    four = {t["shard"]: t for t in view(sys.argv[2])["shards"]}
    for s in shards:
        if 4 in s["voters"]:
            leader = one["shards"][s["shard"]]["leader"]
            if leader == 0:
                sys.exit(1)
            commit = view(8700 + leader)["shards"][s["shard"]]["commit_index"]
            if four[s["shard"]]["applied_index"] < commit:
                sys.exit(1)
except Exception:
    sys.exit(1)
sys.exit(0)
PY
}

echo "==> node 4 joined; sutra rebalance; throughput during the moves (10 s from the rebalance):"
start=$(date +%s.%N)
"$BIN/sutra" bench --data "$DATA" --duration 10 --keys "$KEYS" --concurrency 64 --value-size 100 --json >"$WORK/during.json" &
bench=$!
"$BIN/sutra" rebalance --data "$DATA" >/dev/null
until settled; do sleep 0.1; done
end=$(date +%s.%N)
wait "$bench"
metrics4=$(curl -s "http://127.0.0.1:$HTTP4/metrics")
bytes=$(echo "$metrics4" | awk '/^sutra_snapshot_stream_bytes_received_total/ {s += $2} END {print s + 0}')
streams=$(echo "$metrics4" | awk '/^sutra_snapshot_streams_received_total/ {s += $2} END {print s + 0}')
held=$(curl -s "http://127.0.0.1:$HTTP1/v1/cluster" | python3 -c 'import json,sys; print(sum(4 in s["voters"] for s in json.load(sys.stdin)["map"]["shards"]))')
gap4=$(echo "$metrics4" | awk '/^sutra_loop_max_tick_gap_seconds/ {print $2}')
pid4=$(python3 -c 'import json,sys; print([n["pid"] for n in json.load(open(sys.argv[1]))["nodes"] if n["id"] == 4][0])' "$DATA/cluster.json")
hwm4=$(awk '/^VmHWM/ {print $2}' "/proc/$pid4/status")
echo "==> settled: throughput of the four-node cluster without a move (10 s):"
"$BIN/sutra" bench --data "$DATA" --duration 10 --keys "$KEYS" --concurrency 64 --value-size 100 --json >"$WORK/after.json"
python3 - "$WORK" "$start" "$end" "$bytes" "$streams" "$concepts" "$held" "$gap4" "$hwm4" <<'PY'
import json, sys
work, start, end, nbytes, streams, concepts, held = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), sys.argv[5], sys.argv[6], sys.argv[7]
gap4, hwm4 = float(sys.argv[8] or 0), float(sys.argv[9] or 0)
def wps(name):
    return json.load(open(f"{work}/{name}.json"))["ops_per_s"]
secs = end - start
three, during, after = wps("three"), wps("during"), wps("after")
print(f"grow 3 → 4 nodes ({concepts} concepts): {secs:.1f} s from `sutra rebalance` until node 4 holds {held} of the 12 replicas, no move is left and it applied every leader's commit")
print(f"streamed to node 4: {streams} snapshots, {nbytes / 1e6:.1f} MB, {nbytes / 1e6 / secs:.1f} MB/s over the moves")
print(f"node 4: peak resident memory {hwm4 / 1024:.0f} MiB; longest its loop was held {gap4 * 1000:.0f} ms (restoring and indexing the images it installed)")
print(f"writes/s: {three:.0f} three nodes, {during:.0f} during the moves (10 s from the rebalance), {after:.0f} four nodes settled: "
      f"{100 * during / after if after else 0:.0f}% of the same four-node cluster without a move")
PY
