#!/usr/bin/env bash
# Copy Silero VAD v6 (ONNX, MIT) from an installed faster-whisper into theo.vad's assets,
# so the origin of src/theo/vad/assets/silero_vad_v6.onnx can be reproduced.
# Update the version and SHA-256 in src/theo/vad/assets/NOTICE when the file changes.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
DEST="src/theo/vad/assets/silero_vad_v6.onnx"
# find_spec reads the package's location without importing it (no CTranslate2 load).
SOURCE="$("$PYTHON" -c '
import importlib.util, pathlib, sys
spec = importlib.util.find_spec("faster_whisper")
if spec is None or not spec.submodule_search_locations:
    sys.exit("faster-whisper is not installed; pip install faster-whisper==1.2.*")
print(pathlib.Path(spec.submodule_search_locations[0]) / "assets" / "silero_vad_v6.onnx")
')"
VERSION="$("$PYTHON" -c 'import importlib.metadata as m; print(m.version("faster-whisper"))')"
mkdir -p "$(dirname "$DEST")"
cp "$SOURCE" "$DEST"
echo "copied $SOURCE (faster-whisper $VERSION)"
sha256sum "$DEST"
