#!/usr/bin/env bash
# Create .venv (if missing) and install Theo into it with the given extras, e.g. "dev".
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:?usage: bootstrap_venv.sh EXTRAS}"
if [ ! -x .venv/bin/python ]; then
  "${PYTHON_BIN:-python3}" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[${extras}]"
