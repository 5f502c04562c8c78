"""The TTS backends on the real pulled models: how their onnxruntime sessions are set up.

Workers share the machine's cores with the API process and each other, so their sessions
must not keep threads spinning after a run (onnxruntime's default spins for ~40 ms).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.conftest import KOKORO, PIPER
from theo.engines.tts.backend import SynthesisOptions, TTSBackend
from theo.engines.tts.kokoro_backend import KokoroBackend
from theo.engines.tts.piper_backend import PiperBackend
from theo.manifest import EngineConfig

_SPIN_STOP = "session.force_spinning_stop"


def _session(backend: TTSBackend) -> Any:
    if isinstance(backend, PiperBackend):
        return backend._voice.session  # type: ignore[union-attr]
    assert isinstance(backend, KokoroBackend)
    return backend._kokoro.sess  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("model", "backend_type"), [(PIPER, PiperBackend), (KOKORO, KokoroBackend)]
)
def test_sessions_stop_spinning_after_a_run_and_honour_cpu_threads(
    tts_home: Path, model: str, backend_type: type[PiperBackend] | type[KokoroBackend]
) -> None:
    backend = backend_type()
    info = backend.load(tts_home / "models" / model, EngineConfig(device="cpu", cpu_threads=1))
    options = _session(backend).get_session_options()
    assert options.get_session_config_entry(_SPIN_STOP) == "1"
    assert options.intra_op_num_threads == 1
    assert _session(backend).get_providers() == ["CPUExecutionProvider"]

    audio = backend.synthesize(
        "Good morning.", SynthesisOptions(voice=info.default_voice, language="en-us")
    )
    assert audio.dtype == np.float32
    # "Good morning." is about a second of speech at any sane pace.
    assert 0.4 < audio.size / info.sample_rate < 2.5
    assert 0.05 < float(np.max(np.abs(audio))) <= 1.0


def test_piper_without_cpu_threads_leaves_the_thread_count_to_onnxruntime(
    tts_home: Path,
) -> None:
    backend = PiperBackend()
    backend.load(tts_home / "models" / PIPER, EngineConfig(device="cpu"))
    options = _session(backend).get_session_options()
    assert options.intra_op_num_threads == 0
    assert options.get_session_config_entry(_SPIN_STOP) == "1"
