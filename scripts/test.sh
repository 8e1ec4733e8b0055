#!/usr/bin/env bash
# The test command: unit tests, storage tests, libuv tests and the deterministic Raft simulation.
# A release build runs first because some strict-concurrency errors only show in release builds.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
echo "==> swift test"
if ! swift test --disable-swift-testing 2>&1 | tee .build/test-output.txt; then
    # The failures again, last, where a reader of a long log looks first (each with its assertion's message).
    echo "==> swift test FAILED; the failures:"
    grep -E ": error: |^Test Case .* failed \(" .build/test-output.txt | tail -60 || true
    exit 1
fi
# The HTTP API against docs/openapi.json (schemathesis, PyPI) on a live cluster, and the Python client's tests
# against a real cluster; both bounded, both stop the nodes they start.
echo "==> schemathesis (docs/openapi.json against a live cluster)"
scripts/test-openapi.sh
echo "==> Python client (clients/python)"
scripts/test-python-client.sh
# Coverage-guided fuzzing of every network/disk decoder: 10 s per target (plus the instrumented build).
# Long campaigns: scripts/fuzz.sh TARGET SECONDS (docs/ARCHITECTURE.md, "How it is tested").
echo "==> fuzz (libFuzzer, 10 s per target)"
fuzz_rc=0
scripts/fuzz.sh "" 10 || fuzz_rc=$?
if [ "$fuzz_rc" -eq 2 ]; then
    echo "fuzz: SKIPPED — this Swift toolchain has no libFuzzer"
elif [ "$fuzz_rc" -ne 0 ]; then
    echo "fuzz: a target crashed or does not build (see above)"
    exit 1
fi
