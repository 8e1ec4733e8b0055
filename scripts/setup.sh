#!/usr/bin/env bash
# The first command: install everything on a fresh Debian machine, build, and run what Sutra runs so far.
# Until the node process exists (issue 3), "the main job" is the Raft foundation at work: a deterministic
# simulation of 3- and 5-node clusters under faults, and the consensus-core and durable-log benchmarks.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
echo
echo "==> Raft simulation: 2,000 seeds of 3/5-node clusters with crashes, partitions, snapshots, membership changes"
.build/release/sutra-sim --seeds '0..<2000'
echo
echo "==> Raft core throughput (3 in-memory replicas, one thread)"
.build/release/sutra-bench raft --entries 300000 --runs 3 --batches 1,16,256
if .build/release/sutra-bench --help 2>/dev/null | grep -q ' wal '; then
  echo
  echo "==> Durable log (WAL) throughput on this disk"
  .build/release/sutra-bench wal --runs 3
fi
