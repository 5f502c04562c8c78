"""Acoustic context for realtime finals: the stream's previous segments, heard again.

A segment the VAD cut at a short pause ("Ever failed." between "Ever tried." and "No
matter.") is under a second of audio, and Whisper decoding it alone has nothing to go on:
base heard "Everfair old". Batch transcription decodes the same words inside the whole
recording. A final here is decoded with the audio of the stream's latest finals in front
of its own, their text forced as the decoder's prefix (so they are not transcribed
again), and only the words after the prefix are kept: the acoustic and linguistic context
of batch at the cost of a longer prefix (every prefix word is a decoder step), while the
encoder window (15 s at least for a final) holds the extra audio at no encoder cost.

Unlike a text prompt of earlier finals, which Whisper copies into an unrelated next
segment ("10 of clubs." again), the prefix is tied to its audio. It still primes the
decoder: a word misheard in it, or a new sentence read in its style, can come out wrong
where the segment alone reads right, so the segment is also decoded alone, and the
surer reading wins (:func:`_surer`). The context depends on earlier finals only, which
depend on their audio only, so finals stay independent of how busy the machine is.
"""

from __future__ import annotations

import dataclasses
import functools
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from theo.audio.pcm import ENGINE_SAMPLE_RATE
from theo.engines.stt.backend import SegmentDecode, SegmentOptions, STTBackend
from theo.engines.stt.local_agreement import normalize_word
from theo.engines.stt.pause_anchor import PauseAnchor
from theo.types import Word

# Context and segment together stay within this much audio. The encoder window (15 s at
# least for a final) would hold more at no encoder cost, but every word of the prefix is
# a forced decoder step at the final's beam width (CTranslate2 decodes a prefix token by
# token): 6 s of context, about 18 words, made a tiny.en final ~190 ms slower on one
# engine thread. Short segments, the ones that need context, still get up to the budget;
# a segment of several seconds carries context of its own and gets less or none. More is
# not better: a prefix holding a misheard word makes the next final repeat it (LibriVox
# 0880's "ill-sposed" came back in 0890 at 8 s). Over the accuracy benchmark's realtime
# clip decoded offline (benchmarks/realtime_offline.py: tiny.en and base, 16/48 and
# 8 kHz, 4 x 223 words), errors with digits spelled were 52 at 4 s, 35-36 at 5-6.5 s,
# 32 at 7 and 7.5 s, 40 at 8 and 10 s, and 54 without context.
_TOTAL_S = 7.0

Audio = npt.NDArray[np.float32]
Beside = Callable[[Callable[[], SegmentDecode]], Future[SegmentDecode]]
"""Queues an engine call on another engine lane (``PriorityExecutor.submit_urgent``)."""


@dataclass(frozen=True, slots=True)
class _Final:
    audio: npt.NDArray[np.float32]
    text: str


class FinalContext:
    """The latest finals of one stream (audio and text), up to ``seconds`` of audio."""

    def __init__(self, seconds: float) -> None:
        self._budget = round(seconds * ENGINE_SAMPLE_RATE)
        self._finals: deque[_Final] = deque()

    def remember(self, audio: npt.NDArray[np.float32], text: str) -> None:
        """Keep a final's audio and text, dropping the oldest ones over the budget.

        A final longer than the budget holds enough context of its own: it clears the
        history, so the next segment's context is never older audio than the latest.
        """
        if not text.strip() or audio.size > self._budget:
            self._finals.clear()
            return
        self._finals.append(_Final(audio, text.strip()))
        while sum(f.audio.size for f in self._finals) > self._budget:
            self._finals.popleft()

    def clear(self) -> None:
        """Forget every final (a segment whose start was trimmed away breaks the chain)."""
        self._finals.clear()

    def decoder(
        self,
        backend: STTBackend,
        anchor: PauseAnchor | None = None,
        beside: Beside | None = None,
    ) -> Callable[[Audio, SegmentOptions], SegmentDecode]:
        """A decode function for a final, with the finals remembered now as its context,
        and ``anchor``, the words of the final's own audio up to a pause, forced after them.

        ``beside`` queues the final's second reading (alone) on another engine lane, so the
        two readings run side by side when a lane is free; without it, or while no lane
        has taken it by the time the first reading is done, the caller decodes it too.
        """
        return functools.partial(_decode_in_context, backend, tuple(self._finals), anchor, beside)


def _decode_in_context(
    backend: STTBackend,
    finals: Sequence[_Final],
    anchor: PauseAnchor | None,
    beside: Beside | None,
    audio: Audio,
    options: SegmentOptions,
) -> SegmentDecode:
    """Decode ``audio`` (a final's) behind ``finals``; word times on ``audio``'s clock.

    The newest finals that fit in :data:`_TOTAL_S` with ``audio`` are the context. The
    ``anchor``'s text follows theirs in the prefix, and its words open the result: Whisper
    decodes only what was said after the pause. Without an anchor, ``audio`` is also
    decoded alone, and the reading whose words Whisper is surer of wins (see
    :func:`_surer`). Falls back to decoding ``audio`` alone when there is
    neither context nor anchor, or when the decode keeps no word after the prefix.
    """
    room = round(_TOTAL_S * ENGINE_SAMPLE_RATE) - audio.size
    fitting: list[_Final] = []
    for final in reversed(finals):
        room -= final.audio.size
        if room < 0:
            break
        fitting.insert(0, final)
    finals = fitting
    anchor = anchor if anchor is not None and anchor.text else None
    if (not finals and anchor is None) or options.prefix is not None:
        return backend.decode_segment(audio, options)
    context = np.concatenate([f.audio for f in finals]) if finals else audio[:0]
    prefix = " ".join([*(f.text for f in finals), *([anchor.text] if anchor else [])])
    offset_s = context.size / ENGINE_SAMPLE_RATE
    in_context = (np.concatenate([context, audio]), dataclasses.replace(options, prefix=prefix))
    alone_call = functools.partial(backend.decode_segment, audio, options)
    # Side by side on two lanes, or one after the other; not batched: a batch of two
    # finals grew the worker's memory (+31-48 MB in a 2-minute soak).
    alone_beside = beside(alone_call) if beside is not None and anchor is None else None
    try:
        decode = backend.decode_segment(*in_context)
    except Exception:
        if alone_beside is not None:
            alone_beside.cancel()  # the final failed: no lane need read it alone
        raise
    alone = None if anchor is not None else _second_reading(alone_beside, alone_call)
    after_s = offset_s + (anchor.pause_s if anchor else 0.0)
    words = _after_prefix(decode.words, prefix, after_s)
    if not words:
        return alone if alone is not None else backend.decode_segment(audio, options)
    after = (
        Word(w.word, max(w.start - offset_s, 0.0), max(w.end - offset_s, 0.0), w.probability)
        for w in words
    )
    shifted = (*(anchor.words if anchor else ()), *after)
    text = "".join(w.word for w in shifted).strip()
    behind = SegmentDecode(text, shifted, decode.language, _mean_probability(shifted))
    return _surer(alone, behind) if alone is not None else behind


def _second_reading(
    queued: Future[SegmentDecode] | None, call: Callable[[], SegmentDecode]
) -> SegmentDecode:
    """The result of ``call`` queued on another lane, or of ``call`` run here when no lane
    has started it (cancelling it first: two finals holding both lanes each run their own
    second reading instead of waiting for a lane that never frees)."""
    if queued is None or queued.cancel():
        return call()
    return queued.result()


def _mean_probability(words: Sequence[Word]) -> float:
    return sum(w.probability for w in words) / len(words) if words else 0.0


def _surer(alone: SegmentDecode, in_context: SegmentDecode) -> SegmentDecode:
    """The decode of a final whose words Whisper is surer of (mean word probability).

    The forced prefix of earlier finals primes Whisper: behind "And you always want to
    see it in the superlative degree.", base read the next sentence's "and faced Gregson"
    as "in face gregs in" (mean probability 0.79), alone correctly (0.91); behind
    Beckett's "Fail better.", tiny.en heard JFK's "And so my fellow Americans" as "And so
    am I fellow America" (0.703 against 0.707 alone). A short segment alone lacks the
    context it needs, and is less sure: "Everfired." (0.39) alone, "Ever failed." (0.96)
    behind "Ever tried.". Over the realtime clip at four start shifts
    (benchmarks/realtime_offline.py: tiny.en and base, 16/48 and 8 kHz, 269 words each),
    choosing so made 39.5 errors per shift with digits spelled instead of 48.
    """
    if _mean_probability(alone.words) > _mean_probability(in_context.words):
        return alone
    return in_context


def _after_prefix(words: Sequence[Word], prefix: str, offset_s: float) -> list[Word]:
    """The decoded words after the forced ``prefix``: counted by its words when they match
    (the engine splits words at spaces), else by time."""
    expected = [k for k in (normalize_word(w) for w in prefix.split()) if k]
    keys = [normalize_word(w.word) for w in words]
    spoken = [i for i, key in enumerate(keys) if key]
    if len(spoken) >= len(expected) and [keys[i] for i in spoken[: len(expected)]] == expected:
        cut = spoken[len(expected) - 1] + 1 if expected else 0
        return list(words[cut:])
    return [w for w in words if (w.start + w.end) / 2 >= offset_s]
