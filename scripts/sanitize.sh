#!/usr/bin/env bash
# Runs the unit tests under AddressSanitizer (+LeakSanitizer) and ThreadSanitizer. Not part of CI (slow);
# run it after touching unsafe pointer code (Sources/UV, Sources/WAL) or anything that crosses threads.
set -euo pipefail
cd "$(dirname "$0")/.."
export SWIFT_BACKTRACE=enable=no
FILTER="${1:-UVTests|WALTests|RaftTests}"
echo "==> AddressSanitizer + LeakSanitizer ($FILTER)"
swift build --build-tests --sanitize=address --scratch-path .build-asan
LSAN_OPTIONS="suppressions=$PWD/scripts/lsan.supp" \
  swift test --disable-swift-testing --skip-build --sanitize=address --scratch-path .build-asan --filter "$FILTER"
echo "==> ThreadSanitizer ($FILTER)"
swift build --build-tests --sanitize=thread --scratch-path .build-tsan
TSAN_OPTIONS="halt_on_error=1" \
  swift test --disable-swift-testing --skip-build --sanitize=thread --scratch-path .build-tsan --filter "$FILTER"
