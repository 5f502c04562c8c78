#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs into .venv, checks the committed
# gRPC stubs are fresh, lints, type-checks, then runs every test (including the
# end-to-end tests that pull real models and drive a real `theo serve`).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/bootstrap_venv.sh dev,itn

echo "== proto stubs are fresh"
PYTHON=.venv/bin/python bash scripts/generate_proto.sh
if ! git diff --quiet -- src/theo/wire/proto 2>/dev/null; then
  git --no-pager diff --stat -- src/theo/wire/proto
  echo "The committed gRPC stubs are stale: run scripts/generate_proto.sh and commit." >&2
  exit 1
fi

echo "== ruff"
.venv/bin/ruff check src tests benchmarks scripts
.venv/bin/ruff format --check src tests benchmarks scripts

echo "== mypy (strict)"
.venv/bin/mypy

echo "== pytest"
.venv/bin/pytest "$@"
