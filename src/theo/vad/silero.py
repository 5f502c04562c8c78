"""Silero VAD v6 run with onnxruntime: one shared model, one recurrent state per stream.

The ONNX file ships with Theo in ``theo/vad/assets/`` (copied from faster-whisper by
``scripts/vendor_silero_vad.sh``; see ``assets/NOTICE``), so the API process needs no STT
engine installed and never loads CTranslate2.

The model treats the first axis of ``input`` as time: a batch of N windows is N consecutive
windows of one stream, with ``h``/``c`` carried from each to the next. Feeding the windows
one at a time and passing the returned ``h``/``c`` back in therefore gives the
probabilities of a single batched call over the whole clip.
"""

from __future__ import annotations

import threading
from importlib import resources
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from theo.audio.pcm import ENGINE_SAMPLE_RATE
from theo.errors import TheoError
from theo.onnx_telemetry import disable_onnx_telemetry

WINDOW_SAMPLES: Final = 512
"""Samples of new audio per window at 16 kHz (32 ms)."""
CONTEXT_SAMPLES: Final = 64
"""Samples of the previous window prepended to each window."""
SAMPLE_RATE: Final = ENGINE_SAMPLE_RATE
MODEL_FILENAME: Final = "silero_vad_v6.onnx"
_STATE_SHAPE: Final = (1, 1, 128)

FloatArray = npt.NDArray[np.float32]


class VADModelNotFoundError(TheoError):
    """The Silero VAD model file cannot be found."""


def default_model_path() -> Path:
    """Locate ``silero_vad_v6.onnx`` among the package data of ``theo.vad``.

    Raises:
        VADModelNotFoundError: The installation lacks the file, or holds it only inside
            an archive (onnxruntime needs a file on disk).
    """
    resource = resources.files("theo.vad") / "assets" / MODEL_FILENAME
    if isinstance(resource, Path) and resource.is_file():
        return resource
    raise VADModelNotFoundError(
        f"Silero VAD model '{MODEL_FILENAME}' not found at {resource}: this installation "
        "of theo-openvoice is incomplete; reinstall it (a source checkout restores the file "
        "with scripts/vendor_silero_vad.sh) or pass the file's path explicitly."
    )


class SileroModel:
    """One loaded ONNX session of Silero VAD v6, shareable between streams.

    The session holds no recurrent state (``h``/``c`` are inputs and outputs), and
    onnxruntime allows concurrent ``run`` calls, so one instance may serve every
    :class:`SileroClassifier` from any thread.
    """

    def __init__(self, path: Path | str | None = None) -> None:
        """Load the model.

        Args:
            path: The ``.onnx`` file; by default the one shipped with Theo.

        Raises:
            VADModelNotFoundError: The file does not exist.
        """
        self.path = Path(path) if path is not None else default_model_path()
        if not self.path.is_file():
            raise VADModelNotFoundError(f"Silero VAD model file not found: {self.path}")
        # Lazy: importing theo.vad must not load onnxruntime; the package ships no types.
        import onnxruntime  # type: ignore[import-untyped]  # noqa: PLC0415

        disable_onnx_telemetry()
        options = onnxruntime.SessionOptions()
        # One thread per call: a 32 ms window takes ~0.1 ms, and concurrency comes from
        # sessions running on different threads, not from splitting one window.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self._session: Any = onnxruntime.InferenceSession(
            str(self.path), sess_options=options, providers=["CPUExecutionProvider"]
        )

    def run(
        self, windows: FloatArray, h: FloatArray, c: FloatArray
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Score consecutive windows of one stream.

        Args:
            windows: ``[N, 64 + 512]`` float32, each row a window preceded by its context.
            h: LSTM hidden state ``[1, 1, 128]`` after the previous window.
            c: LSTM cell state ``[1, 1, 128]`` after the previous window.

        Returns:
            Speech probabilities ``[N]`` and the states after the last window.
        """
        probs, h_out, c_out = self._session.run(None, {"input": windows, "h": h, "c": c})
        return np.asarray(probs, dtype=np.float32).reshape(-1), h_out, c_out

    def classifier(self) -> SileroClassifier:
        """A fresh per-stream classifier backed by this model."""
        return SileroClassifier(self)


class SileroClassifier:
    """Scores one stream's windows, carrying its recurrent state and 64-sample context.

    Belongs to exactly one stream and is used by one thread at a time.
    """

    def __init__(self, model: SileroModel) -> None:
        """Start a stream at the model's initial state."""
        self._model = model
        self._h = np.zeros(_STATE_SHAPE, dtype=np.float32)
        self._c = np.zeros(_STATE_SHAPE, dtype=np.float32)
        self._input = np.zeros((1, CONTEXT_SAMPLES + WINDOW_SAMPLES), dtype=np.float32)

    def probability(self, window: FloatArray) -> float:
        """Speech probability of the next 512-sample window of the stream.

        Raises:
            ValueError: ``window`` does not hold exactly 512 samples.
        """
        self._check(window)
        self._input[0, CONTEXT_SAMPLES:] = window
        probs, self._h, self._c = self._model.run(self._input, self._h, self._c)
        self._carry_context()
        return float(probs[0])

    def skip(self, window: FloatArray) -> None:
        """Advance past a window judged without the model.

        The next window's context still comes from the audio, while the recurrent state
        is kept as it was: on the fixtures this tracks the probabilities of running every
        window far better than restarting from the initial state does.
        """
        self._check(window)
        self._input[0, CONTEXT_SAMPLES:] = window
        self._carry_context()

    def reset(self) -> None:
        """Return to the initial state, as at the start of a stream."""
        self._h = np.zeros(_STATE_SHAPE, dtype=np.float32)
        self._c = np.zeros(_STATE_SHAPE, dtype=np.float32)
        self._input.fill(0.0)

    def _carry_context(self) -> None:
        self._input[0, :CONTEXT_SAMPLES] = self._input[0, -CONTEXT_SAMPLES:]

    @staticmethod
    def _check(window: FloatArray) -> None:
        if window.shape != (WINDOW_SAMPLES,):
            raise ValueError(f"expected a window of {WINDOW_SAMPLES} samples, got {window.shape}")


# The one piece of module-level mutable state in theo.vad: the lazily loaded model that
# every detector built without an explicit model shares. It is immutable once built.
_shared_model: SileroModel | None = None
_shared_model_lock = threading.Lock()


def shared_model() -> SileroModel:
    """The process-wide Silero model, loaded on first use (thread-safe).

    Raises:
        VADModelNotFoundError: The model file cannot be found.
    """
    global _shared_model  # noqa: PLW0603 - the documented lazily built shared model
    if _shared_model is None:
        with _shared_model_lock:
            if _shared_model is None:
                _shared_model = SileroModel()
    return _shared_model
