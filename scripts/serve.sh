#!/usr/bin/env bash
# Install Theo into .venv, pull the default models (once) and serve them on port 8000.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/bootstrap_venv.sh faster-whisper,piper,kokoro

for model in ${THEO_DEFAULT_MODELS:-faster-whisper-tiny.en faster-whisper-base piper-en-us-joe-medium kokoro-v1}; do
  .venv/bin/theo pull "$model"
done
exec .venv/bin/theo serve "$@"
