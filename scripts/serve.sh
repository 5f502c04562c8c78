#!/usr/bin/env bash
# Install Theo into .venv, pull the default models (once) and serve them on port 8000.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON_BIN="${PYTHON_BIN:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON_BIN" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[faster-whisper]"

for model in ${THEO_DEFAULT_MODELS:-faster-whisper-tiny.en faster-whisper-base}; do
  .venv/bin/theo pull "$model"
done
exec .venv/bin/theo serve "$@"
