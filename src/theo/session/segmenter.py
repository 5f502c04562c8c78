"""Per-session audio front end: preprocessing, VAD and segment cutting, frame by frame.

Synchronous and CPU-bound: the session runs :meth:`Segmenter.process` off the event loop.
The VAD sees the audio before gain normalization; the engine gets the normalized audio,
including a short pre-roll before the detected onset so no first syllable is lost.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from theo.audio.pcm import ENGINE_SAMPLE_RATE
from theo.preprocessing.chain import PreprocessingChain
from theo.vad.detector import VADDetector

SAMPLE_RATE = ENGINE_SAMPLE_RATE
_HISTORY_SAMPLES = SAMPLE_RATE * 2

Samples = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    """The VAD confirmed speech; ``offset`` is where the segment's audio begins."""

    offset: int
    onset: int


@dataclass(frozen=True, slots=True)
class SegmentAudio:
    """Engine audio (16 kHz) belonging to the open segment."""

    samples: Samples
    paused: bool = False
    """The VAD hears silence at the end of this audio, not yet long enough to end speech."""


@dataclass(frozen=True, slots=True)
class SpeechEnded:
    """The VAD confirmed silence after speech ending at ``offset``."""

    offset: int


SegmentEvent = SpeechStarted | SegmentAudio | SpeechEnded


class Segmenter:
    """Cuts one session's audio into speech segments. Owns its chain and VAD state."""

    def __init__(
        self,
        chain: PreprocessingChain,
        vad: VADDetector,
        base: int = 0,
        *,
        preroll_ms: int = 200,
        manual: bool = False,
    ) -> None:
        """Create a segmenter whose clock starts at ``base`` engine samples.

        A session that rebuilds its segmenter (new input rate) passes the old position,
        so session time stays monotonic. ``preroll_ms`` of audio before the VAD's onset
        go with each segment. ``manual`` turns the VAD off: audio opens a segment and
        only :meth:`force_end` (a commit) ends it.
        """
        self.chain = chain
        self.vad = vad
        self.preroll_ms = preroll_ms
        self._manual = manual
        self._history: deque[tuple[int, Samples]] = deque()
        self._base = base
        self._position = base  # engine samples produced so far
        self._in_segment = False

    @property
    def position(self) -> int:
        """Engine samples (16 kHz) produced so far."""
        return self._position

    @property
    def in_segment(self) -> bool:
        """Whether audio is currently being sent to a segment."""
        return self._in_segment

    def process(self, frame: Samples) -> list[SegmentEvent]:
        """Run one client frame through preprocessing and VAD."""
        output = self.chain.process(frame)
        events: list[SegmentEvent] = []
        engine = output.engine
        start = self._position
        if engine.size:
            self._remember(start, engine)
            self._position += engine.size
        if self._manual:
            return self._manual_events(start)
        vad_events = self.vad.process(output.vad)
        sent_upto = start
        for vad_event in vad_events:
            at = self._base + vad_event.sample_offset
            if vad_event.kind == "speech_start" and not self._in_segment:
                preroll = SAMPLE_RATE * self.preroll_ms // 1000
                begin = max(at - preroll, self._oldest())
                events.append(SpeechStarted(offset=begin, onset=at))
                events.append(SegmentAudio(self._slice(begin, self._position)))
                sent_upto = self._position
                self._in_segment = True
            elif vad_event.kind == "speech_end" and self._in_segment:
                if sent_upto < self._position:
                    # The VAD's silence wait: this audio is the pause that ended speech.
                    events.append(SegmentAudio(self._slice(sent_upto, self._position), paused=True))
                    sent_upto = self._position
                events.append(SpeechEnded(offset=at))
                self._in_segment = False
        if self._in_segment and sent_upto < self._position:
            events.append(
                SegmentAudio(self._slice(sent_upto, self._position), paused=self.vad.pausing)
            )
        return events

    def _manual_events(self, start: int) -> list[SegmentEvent]:
        if start == self._position:
            return []
        events: list[SegmentEvent] = []
        if not self._in_segment:
            self._in_segment = True
            events.append(SpeechStarted(offset=start, onset=start))
        events.append(SegmentAudio(self._slice(start, self._position)))
        return events

    def force_end(self) -> None:
        """End the open segment now (commit); later speech audio opens a new segment."""
        self._in_segment = False

    def end_pause(self) -> SpeechEnded | None:
        """End the open segment at the current pause, where the VAD's silence wait would
        have ended it (``None`` when no segment is open or the VAD hears no pause)."""
        if self._manual or not self._in_segment:
            return None
        event = self.vad.end_pause()
        if event is None:
            return None
        self._in_segment = False
        return SpeechEnded(offset=self._base + event.sample_offset)

    def resume_if_speaking(self) -> SpeechStarted | None:
        """After a commit, continue in a new segment while the VAD still hears speech."""
        if not self._manual and self.vad.is_speech and not self._in_segment:
            self._in_segment = True
            return SpeechStarted(offset=self._position, onset=self._position)
        return None

    def _remember(self, start: int, samples: Samples) -> None:
        self._history.append((start, samples))
        while self._history and self._position - self._history[0][0] > _HISTORY_SAMPLES:
            self._history.popleft()

    def _oldest(self) -> int:
        return self._history[0][0] if self._history else self._position

    def _slice(self, begin: int, end: int) -> Samples:
        parts = [
            chunk[max(0, begin - offset) : max(0, end - offset)]
            for offset, chunk in self._history
            if offset + chunk.size > begin and offset < end
        ]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)
