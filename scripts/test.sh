#!/usr/bin/env bash
# The test command: unit tests, storage tests, libuv tests and the deterministic Raft simulation.
# A release build runs first because some strict-concurrency errors only show in release builds.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
echo "==> swift test"
swift test --disable-swift-testing 2>&1 | tee .build/test-output.txt
