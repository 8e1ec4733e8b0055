#!/usr/bin/env bash
# The baseline the issues compare Sutra with: etcd (Debian etcd-server) as 3 members on loopback with default
# settings, measured with `etcdctl check perf --load=xl` (durable writes/s and latency), plus its failover time is
# not measured here. Installs etcd-server/etcd-client if missing; starts and stops the members by pid.
set -euo pipefail
command -v etcd >/dev/null || { apt-get install -y -qq etcd-server etcd-client >/dev/null; }
DIR=$(mktemp -d /tmp/etcd-baseline.XXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done; rm -rf "$DIR"; }
trap cleanup EXIT
CLUSTER="e1=http://127.0.0.1:12380,e2=http://127.0.0.1:22380,e3=http://127.0.0.1:32380"
for i in 1 2 3; do
  etcd --name e$i --data-dir "$DIR/e$i" \
    --listen-client-urls http://127.0.0.1:${i}2379 --advertise-client-urls http://127.0.0.1:${i}2379 \
    --listen-peer-urls http://127.0.0.1:${i}2380 --initial-advertise-peer-urls http://127.0.0.1:${i}2380 \
    --initial-cluster "$CLUSTER" --initial-cluster-state new --log-level error >"$DIR/e$i.log" 2>&1 &
  PIDS+=($!)
done
EP=http://127.0.0.1:12379,http://127.0.0.1:22379,http://127.0.0.1:32379
for t in $(seq 100); do ETCDCTL_API=3 etcdctl --endpoints=$EP endpoint health >/dev/null 2>&1 && break; sleep 0.2; done
ETCDCTL_API=3 etcdctl --endpoints=$EP check perf --load=xl
