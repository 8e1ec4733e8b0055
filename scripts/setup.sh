#!/usr/bin/env bash
# The first command: install everything on a fresh Debian machine, build, and start the main job — a local
# three-node Sutra cluster (8 shards, 768-d embeddings) on loopback, in the background, ready for curl and the
# SDK. Data and logs go to ./sutra-cluster; stop it with `.build/release/sutra cluster down`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
SUTRA=.build/release/sutra
DATA=./sutra-cluster
echo
if [ -f "$DATA/cluster.json" ] && $SUTRA status --data "$DATA" >/dev/null 2>&1; then
  echo "==> a local cluster from $DATA is already running:"
else
  echo "==> starting a local three-node cluster"
  $SUTRA cluster up --data "$DATA"
fi
echo
$SUTRA status --data "$DATA"
echo
echo "==> smoke test through HTTP (write via node 1, read back via node 2: any node answers)"
# `cluster up` made the nodes require tokens and wrote an admin token here (see docs/OPERATIONS.md § Security).
AUTH=()
[ -f "$DATA/admin.token" ] && AUTH=(-H "Authorization: Bearer $(cat "$DATA/admin.token")")
ID=0000000000000000000000000000c0de
echo "  write: $(curl -s --retry 5 --retry-all-errors "${AUTH[@]}" -X POST http://127.0.0.1:7201/v1/concepts -d "{\"id\":\"$ID\",\"content\":\"hello from setup\"}")"
echo "  read:  $(curl -s --retry 5 --retry-all-errors "${AUTH[@]}" "http://127.0.0.1:7202/v1/concepts/$ID")"
cat <<MSG

Sutra is running; clients need the admin token in $DATA/admin.token (the sutra CLI uses it by itself). Try:
  curl -s -H "Authorization: Bearer \$(cat $DATA/admin.token)" http://127.0.0.1:7201/v1/cluster
  curl -s http://127.0.0.1:7201/metrics | head
  $SUTRA status                       # leaders, terms, lag
  $SUTRA bench --duration 10          # load test through the SDK
  $SUTRA cluster down                 # stop it (graceful)
SDK endpoints: 127.0.0.1:7101,127.0.0.1:7102,127.0.0.1:7103   HTTP: 127.0.0.1:7201 … 7203
MSG
