#!/usr/bin/env bash
# Installs what Sutra needs on a fresh Debian machine, then builds it (debug and release).
# Usage: scripts/install.sh   (idempotent; run as root or with sudo available)
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(libuv1-dev pkg-config libhnswlib-dev libhttp-parser-dev libssl-dev openssl curl)
missing=()
for p in "${PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "==> installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi

command -v swift >/dev/null || { echo "swift not found on PATH (Swift 6.2 or newer is required)"; exit 1; }
echo "==> building (debug)"
swift build
echo "==> building (release)"
swift build -c release
echo "==> built: .build/release/sutra-node, sutra, sutra-sim, sutra-bench"
