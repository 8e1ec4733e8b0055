#!/usr/bin/env bash
# Installs what Sutra needs on a fresh Debian machine, then builds it (debug and release).
# Usage: scripts/install.sh   (idempotent; run as root or with sudo available)
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(libuv1-dev pkg-config libhnswlib-dev libhttp-parser-dev libssl-dev openssl curl)
missing=()
for p in "${PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
# Python 3 with venv and pip: the OpenAPI check (schemathesis), the Python client's tests and the reference
# embedding service each install into a virtual environment of their own. A Python that already has them (pyenv,
# say) is used as it is.
if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -m ensurepip --version >/dev/null 2>&1; then
  for p in python3 python3-venv python3-pip; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
fi
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
