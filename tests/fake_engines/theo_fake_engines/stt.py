"""A fake STT engine that "hears" a scripted transcript at a fixed speaking rate.

It implements the real ``STTBackend`` interface, so the whole server (routes, sessions,
worker supervision, crash recovery) runs unchanged around it, in seconds and without a
model. Its script comes from the manifest's ``engine_config``:

- ``transcript``: the words it hears, in order (default "one two three ...").
- ``words_per_second``: how many of them a second of audio holds (default 3).
- ``language``: the language it reports (default "en").
- ``crash_file``: a path; while that file exists, the next decode deletes it and kills
  the worker process (an injected crash that happens once).
- ``reveal_pid``: when true, a batch transcript ends with ``pid<N>``, the worker
  process that served it (so a test can see how requests were routed).
- ``decode_delay_s``: how long each batch decode takes (default 0), so requests overlap.
- ``load_delay_s``: how long loading takes (default 0; Health answers LOADING meanwhile),
  so a restarted worker comes back late and a test can act while sessions wait for it.
- ``load_crash_file``: a path; while that file exists, the next load deletes it and kills
  the worker (it dies again while it restarts).
- ``stream_crash_file``: a path; while that file exists, the next realtime stream opened
  on the worker deletes it and kills the worker (it dies as a session opens its stream).
- ``stream_decode_delay_s``: how long each realtime decode takes (default 0).
- ``translation``, ``languages``: the capabilities it declares (default: no translation,
  any language).
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from theo.engines.stt.backend import (
    BatchControl,
    CancelledByClient,
    LoadedModelInfo,
    SegmentDecode,
    SegmentOptions,
    STTCapabilities,
)
from theo.manifest import EngineConfig
from theo.types import BatchResult, Segment, TranscribeParams, Word

SAMPLE_RATE = 16_000
_CALL_S = 0.05
"""Longest scripted engine call of a batch decode: the fake stops within this once cancelled."""
_DEFAULT_TRANSCRIPT = "one two three four five six seven eight nine ten eleven twelve"


def _crash_if_armed(crash_file: Path | None) -> None:
    """Kill the worker process if ``crash_file`` exists (deleting it: the crash happens once)."""
    if crash_file is not None and crash_file.exists():
        crash_file.unlink()
        os._exit(1)  # a worker dying mid-request, as a segfaulting engine would


@dataclass(frozen=True)
class _ScriptedCapabilities(STTCapabilities):
    """The declared capabilities; the servicer's stream check doubles as a stream-open hook."""

    stream_crash_file: Path | None = None

    def check_stream(self) -> None:
        """Crash when armed (a stream is being opened), then check as usual."""
        _crash_if_armed(self.stream_crash_file)
        STTCapabilities.check_stream(self)


class FakeSTTBackend:
    """Scripted speech-to-text: the first ``duration * words_per_second`` script words."""

    engine_name = "fake"

    def __init__(self) -> None:
        self._words: list[str] = _DEFAULT_TRANSCRIPT.split()
        self._rate = 3.0
        self._language = "en"
        self._crash_file: Path | None = None
        self._reveal_pid = False
        self._delay_s = 0.0
        self._stream_delay_s = 0.0

    def load(self, model_dir: Path, config: EngineConfig) -> LoadedModelInfo:
        """Read the script from ``engine_config``."""
        extra = config.model_extra or {}
        load_crash_file = extra.get("load_crash_file")
        _crash_if_armed(Path(str(load_crash_file)) if load_crash_file else None)
        time.sleep(float(extra.get("load_delay_s", 0.0)))  # a model taking its time to load
        self._words = str(extra.get("transcript", _DEFAULT_TRANSCRIPT)).split()
        self._rate = float(extra.get("words_per_second", 3.0))
        self._language = str(extra.get("language", "en"))
        crash_file = extra.get("crash_file")
        self._crash_file = Path(str(crash_file)) if crash_file else None
        self._reveal_pid = bool(extra.get("reveal_pid", False))
        self._delay_s = float(extra.get("decode_delay_s", 0.0))
        self._stream_delay_s = float(extra.get("stream_decode_delay_s", 0.0))
        stream_crash_file = extra.get("stream_crash_file")
        capabilities = _ScriptedCapabilities(
            streaming=True,
            native_partials=False,
            word_timestamps=True,
            translation=bool(extra.get("translation", False)),
            languages=tuple(str(code) for code in extra.get("languages", ())),
            stream_crash_file=Path(str(stream_crash_file)) if stream_crash_file else None,
        )
        return LoadedModelInfo(
            engine="fake", device="cpu", compute_type="none", capabilities=capabilities
        )

    def _maybe_crash(self) -> None:
        _crash_if_armed(self._crash_file)

    def _heard(self, audio: npt.NDArray[np.float32]) -> list[Word]:
        seconds = audio.size / SAMPLE_RATE
        count = min(len(self._words), math.floor(seconds * self._rate))
        step = 1.0 / self._rate
        return [
            Word(word=f" {w}", start=i * step, end=(i + 1) * step, probability=0.9)
            for i, w in enumerate(self._words[:count])
        ]

    def transcribe(
        self,
        audio: npt.NDArray[np.float32],
        params: TranscribeParams,
        cancel: threading.Event,
        on_segment: Callable[[Segment, str], None] | None = None,
    ) -> BatchResult:
        """The scripted words for the clip's length, as one segment."""
        self._maybe_crash()
        # The scripted decode time, in engine calls of at most _CALL_S: before each, a
        # BatchControl may make the request wait for realtime work, or stop it.
        calls = max(1, math.ceil(self._delay_s / _CALL_S))
        for _ in range(calls):
            if isinstance(cancel, BatchControl):
                cancel.checkpoint()
            if cancel.wait(self._delay_s / calls):
                raise CancelledByClient
        words = tuple(self._heard(audio))
        text = "".join(w.word for w in words).strip()
        if self._reveal_pid:
            text = f"{text} pid{os.getpid()}".strip()
        duration = audio.size / SAMPLE_RATE
        segment = Segment(
            id=0,
            start=0.0,
            end=duration,
            text=f" {text}",
            words=words if params.word_timestamps else (),
        )
        if on_segment is not None and text:
            on_segment(segment, params.language or self._language)
        return BatchResult(
            text=text,
            language=params.language or self._language,
            duration=duration,
            segments=(segment,) if text else (),
        )

    def decode_segment(
        self, audio: npt.NDArray[np.float32], options: SegmentOptions
    ) -> SegmentDecode:
        """The scripted words for the segment's length."""
        self._maybe_crash()
        time.sleep(self._stream_delay_s)  # the scripted decode time (on the inference thread)
        words = tuple(self._heard(audio))
        return SegmentDecode(
            text="".join(w.word for w in words).strip(),
            words=words,
            language=options.language or self._language,
            confidence=0.9,
        )

    def decode_segments(
        self, passes: Sequence[tuple[npt.NDArray[np.float32], SegmentOptions]]
    ) -> list[SegmentDecode | Exception]:
        """Several passes in one scripted decode time, as a batched engine call."""
        self._maybe_crash()
        time.sleep(self._stream_delay_s)
        decodes: list[SegmentDecode | Exception] = []
        for audio, options in passes:
            words = tuple(self._heard(audio))
            text = "".join(w.word for w in words).strip()
            language = options.language or self._language
            decodes.append(SegmentDecode(text, words, language, 0.9))
        return decodes

    def tail_tokens(self, text: str, max_tokens: int) -> str:
        """The last ``max_tokens`` words (one word, one token)."""
        return " ".join(text.split()[-max_tokens:])
