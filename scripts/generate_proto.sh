#!/usr/bin/env bash
# Regenerate the committed gRPC stubs from src/theo/wire/proto/*.proto.
# CI runs this and fails when `git diff` shows the committed stubs are stale.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python}"
PROTO_DIR="src/theo/wire/proto"
"$PYTHON" -m grpc_tools.protoc \
  --proto_path=src \
  --python_out=src \
  --pyi_out=src \
  --grpc_python_out=src \
  "$PROTO_DIR"/*.proto
