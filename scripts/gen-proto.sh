#!/usr/bin/env bash
# Regenerates the Swift code of the client protocol: proto/sutra/v1/client.proto →
# Sources/ClientProto/sutra/v1/client.pb.swift (committed). Run it after changing the .proto file.
#
# No SwiftPM build plugin (it compiles protoc from source, ~300 s per clean build): this script builds
# protoc-gen-swift once from the swift-protobuf checkout the package resolved (so the generator always matches
# the runtime library version) into .build-protoc/, and runs Debian's protoc (protobuf-compiler) with it.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"

command -v protoc >/dev/null || { echo "protoc not found: apt-get install -y protobuf-compiler" >&2; exit 1; }
command -v swift >/dev/null || { echo "swift not found on PATH" >&2; exit 1; }

echo "==> resolving packages"
swift package resolve
CHECKOUT="$ROOT/.build/checkouts/swift-protobuf"
[ -f "$CHECKOUT/Package.swift" ] || { echo "swift-protobuf checkout missing at $CHECKOUT" >&2; exit 1; }
echo "==> building protoc-gen-swift ($(git -C "$CHECKOUT" describe --tags 2>/dev/null || echo 'unknown version'))"
swift build --package-path "$CHECKOUT" --scratch-path "$ROOT/.build-protoc" --product protoc-gen-swift
PLUGIN="$(swift build --package-path "$CHECKOUT" --scratch-path "$ROOT/.build-protoc" --show-bin-path)/protoc-gen-swift"

echo "==> protoc $(protoc --version)"
rm -rf Sources/ClientProto/sutra
protoc --plugin=protoc-gen-swift="$PLUGIN" \
  --swift_out=Sources/ClientProto --swift_opt=Visibility=Public \
  -I proto proto/sutra/v1/client.proto
echo "==> generated:"
find Sources/ClientProto/sutra -name '*.pb.swift' -print
