"""Where long audio is cut into the windows that are decoded several per engine call.

faster-whisper's ``BatchedInferencePipeline`` finds speech with Silero and packs the
speech regions greedily into windows of up to 30 s. Greedy packing ends a window wherever
the next region no longer fits, often a phrase before a sentence ends; Whisper, decoding a
window without timestamps, then tends to leave out the trailing fragment ("... the other
way. In short," lost "In short," in the LibriVox reading of *A Tale of Two Cities*, with
the window-by-window decoder reading it). Here the same regions are packed so that a full
window ends at the latest pause between sentences in its second half (the longest pause
there when none is that long), and the words after that pause open the next window.
Where a window's decode (with timestamps) still stops before its speech ends,
:meth:`LongAudioPlan.abandoned` names the tail to decode again.
Silence between regions is cut as the pipeline cuts it (400 ms of it kept on each side
of speech), so a window holds as much speech as before.

The plan is applied by handing the pipeline the kept audio, joined, and one clip per
window (its ``clip_timestamps``); :meth:`LongAudioPlan.to_source_time` maps the times of
the decoded segments back to the input's timeline.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

SAMPLE_RATE: Final = 16_000
WINDOW_S: Final = 30.0
# faster-whisper's pipeline keeps 400 ms around speech and ends a region after 160 ms of
# silence; the same values keep its windows' content.
SPEECH_PAD_S: Final = 0.4
MIN_SILENCE_MS: Final = 160
# A window ends at a pause that leaves it at least this full, so windows stay long (one
# encoder pass costs the same for 5 s and 30 s of audio): the latest pause of at least
# LONG_PAUSE_S (between sentences; "In short," followed a 0.8 s pause and was followed by
# a 0.29 s one), else the longest.
MIN_FILL: Final = 0.5
LONG_PAUSE_S: Final = 0.5
# Speech left after a window's last decoded segment that is decoded again on its own.
MIN_ABANDONED_S: Final = 0.5
# Audio read before a tail's start, so a start that cuts a word does not lose it.
TAIL_CONTEXT_S: Final = 1.0


@dataclass(frozen=True, slots=True)
class Region:
    """A stretch of the input kept for decoding, in samples: ``[start, end)``, and the
    silence (seconds) between its speech and the next region's."""

    start: int
    end: int
    pause_after_s: float


@dataclass(frozen=True, slots=True)
class Tail:
    """Speech of a window to decode again, in seconds of the plan's audio: read from
    ``read_from``; its words from ``start`` to ``end`` replace what was decoded there."""

    read_from: float
    start: float
    end: float


@dataclass(frozen=True, slots=True)
class LongAudioPlan:
    """The kept audio, joined, and the windows to decode it in.

    Attributes:
        audio: The kept regions of the input, one after another.
        clips: One ``{"start", "end"}`` per window, in seconds of ``audio``.
        joined_starts: Where each kept region starts in ``audio`` (samples).
        source_starts: Where the same region starts in the input (samples).
    """

    audio: npt.NDArray[np.float32]
    clips: tuple[dict[str, float], ...]
    joined_starts: tuple[int, ...]
    source_starts: tuple[int, ...]
    speech: tuple[tuple[float, float], ...] = ()
    """The speech itself (unpadded), in seconds of ``audio``."""

    def abandoned(self, decoded: Sequence[tuple[float, float]]) -> list[Tail]:
        """The tails of the windows to decode again because the decoder left speech out:
        where at least ``MIN_ABANDONED_S`` of speech follows the end of the last segment
        decoded in a clip (``decoded``: segment start and end, seconds of ``audio``), from
        that segment's start to the clip's end, read from ``TAIL_CONTEXT_S`` earlier.

        The tail takes the last segment in again: its end can fall inside its last word
        or on the next one ("... before us, we" + "We're all going"). Its start can fall
        inside a word too, hence the context: the words the tail reads before the start
        belong to the segments before."""
        tails: list[Tail] = []
        for clip in self.clips:
            start, end = clip["start"], clip["end"]
            inside = [(s, e) for s, e in decoded if start <= s < end]
            if not inside:
                continue  # nothing decoded: no speech Whisper could read
            last_start = max(s for s, _ in inside)
            last_end = max(e for _, e in inside)
            left = sum(max(0.0, min(b, end) - max(a, last_end)) for a, b in self.speech)
            if left >= MIN_ABANDONED_S:
                tails.append(Tail(max(start, last_start - TAIL_CONTEXT_S), last_start, end))
        return tails

    def to_source_time(self, seconds: float, *, is_end: bool = False) -> float:
        """A time in ``audio`` (seconds) as the same instant of the input; an end that
        falls where two regions meet belongs to the region before."""
        sample = round(seconds * SAMPLE_RATE)
        find = bisect.bisect_left if is_end else bisect.bisect_right
        index = max(0, find(self.joined_starts, sample) - 1)
        return (self.source_starts[index] + sample - self.joined_starts[index]) / SAMPLE_RATE


def padded_regions(
    speech: Sequence[tuple[int, int]], total: int, pad: int = round(SPEECH_PAD_S * SAMPLE_RATE)
) -> list[Region]:
    """Speech spans (samples, in order, unpadded) widened by ``pad`` on each side; where
    two spans are closer than two pads they meet halfway, as faster-whisper pads them."""
    regions: list[Region] = []
    for index, (start, end) in enumerate(speech):
        if index == 0:
            begin = max(0, start - pad)
        else:
            gap = start - speech[index - 1][1]
            begin = start - pad if gap >= 2 * pad else start - gap // 2
        if index + 1 < len(speech):
            gap = speech[index + 1][0] - end
            finish = end + pad if gap >= 2 * pad else end + (gap - gap // 2)
            pause = gap / SAMPLE_RATE
        else:
            finish = min(total, end + pad)
            pause = 0.0
        regions.append(Region(begin, finish, pause))
    return regions


def pack_windows(
    regions: Sequence[Region],
    window: int,
    min_fill: float = MIN_FILL,
    long_pause_s: float = LONG_PAUSE_S,
) -> list[int]:
    """Indices at which each window after the first starts: regions fill a window in
    order; when the next one does not fit, the window ends at a pause that leaves it at
    least ``min_fill`` full: the latest one of ``long_pause_s`` or more, else the longest
    one (or, with none, where it is); the regions after that pause start the next window."""
    starts: list[int] = []
    first = 0
    filled = 0
    index = 0
    while index < len(regions):
        size = regions[index].end - regions[index].start
        if index == first or filled + size <= window:
            filled += size
            index += 1
            continue
        cut = index
        best = -1.0
        length = 0
        for candidate in range(first, index):
            length += regions[candidate].end - regions[candidate].start
            pause = regions[candidate].pause_after_s
            if length < min_fill * window:
                continue
            # The latest long pause, else the longest one: later cuts keep windows full.
            if pause >= long_pause_s or (best < long_pause_s and pause > best):
                best, cut = pause, candidate + 1
        starts.append(cut)
        first = cut
        index = cut
        filled = 0
    return starts


def plan_long_audio(
    audio: npt.NDArray[np.float32], speech: Sequence[tuple[int, int]]
) -> LongAudioPlan | None:
    """The plan for ``audio`` (16 kHz) given its speech spans (samples, unpadded, none
    longer than a window less two pads); ``None`` when there is no speech."""
    if not speech:
        return None
    regions = padded_regions(speech, audio.size)
    window = round(WINDOW_S * SAMPLE_RATE)
    window_starts = set(pack_windows(regions, window))
    pieces: list[npt.NDArray[np.float32]] = []
    joined_starts: list[int] = []
    clips: list[dict[str, float]] = []
    position = 0
    clip_start = 0
    for index, region in enumerate(regions):
        if index in window_starts:
            clips.append({"start": clip_start / SAMPLE_RATE, "end": position / SAMPLE_RATE})
            clip_start = position
        joined_starts.append(position)
        pieces.append(audio[region.start : region.end])
        position += region.end - region.start
    clips.append({"start": clip_start / SAMPLE_RATE, "end": position / SAMPLE_RATE})
    return LongAudioPlan(
        audio=np.concatenate(pieces).astype(np.float32, copy=False),
        clips=tuple(clips),
        joined_starts=tuple(joined_starts),
        source_starts=tuple(r.start for r in regions),
        speech=tuple(
            (
                (joined + begin - region.start) / SAMPLE_RATE,
                (joined + finish - region.start) / SAMPLE_RATE,
            )
            for (begin, finish), region, joined in zip(speech, regions, joined_starts, strict=True)
        ),
    )


def find_speech(audio: npt.NDArray[np.float32]) -> list[tuple[int, int]]:
    """Silero's speech spans in ``audio`` (16 kHz), as the pipeline's VAD finds them but
    unpadded, each at most a window less two pads."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps  # noqa: PLC0415

    options = VadOptions(
        max_speech_duration_s=WINDOW_S - 2 * SPEECH_PAD_S,
        min_silence_duration_ms=MIN_SILENCE_MS,
        speech_pad_ms=0,
    )
    return [(int(s["start"]), int(s["end"])) for s in get_speech_timestamps(audio, options)]


def without_repeated_opening(before: str, text: str, max_words: int = 2) -> str:
    """``text`` (a tail's words) without the words it opens with that end ``before`` (the
    text decoded just before the tail), up to ``max_words``, never all of them: the
    segment before and the tail's context can both hold a word the boundary cuts
    ("... spring of hope, it" + "it was the winter")."""
    said = [_bare(word) for word in before.split()]
    words = text.split()
    for count in range(min(max_words, len(said), len(words) - 1), 0, -1):
        if said[-count:] == [_bare(word) for word in words[:count]]:
            leading = text[: len(text) - len(text.lstrip())]
            return leading + " ".join(words[count:])
    return text


def _bare(word: str) -> str:
    return "".join(char for char in word.lower() if char.isalnum() or char == "'")
