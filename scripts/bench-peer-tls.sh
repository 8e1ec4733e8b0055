#!/usr/bin/env bash
# The cost of mutual TLS on peer links: one build, mTLS (the default) against `--insecure-peers`, alternated in
# one sitting by scripts/bench-ab.sh (64 clients and 1 client; medians and the ratio at the end).
# Usage: scripts/bench-peer-tls.sh BIN_DIR [ROUNDS] [DURATION]   (BIN_DIR holds sutra and sutra-node, e.g. .build/release)
set -euo pipefail
bin=$1
A_NAME=mTLS B_NAME=insecure B_FLAGS=--insecure-peers CONCURRENCIES="64 1" \
  BENCH_OUT=${BENCH_OUT:-/tmp/sutra-bench-peer-tls} exec "$(dirname "$0")/bench-ab.sh" "$bin" "$bin" "${2:-3}" "${3:-10}"
