"""StreamTranscriber with a scripted engine: partial order, finals, context, trimming, errors."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from theo.engines.stt.backend import (
    LoadedModelInfo,
    SegmentDecode,
    SegmentOptions,
    STTBackend,
    UnsupportedParameterError,
)
from theo.engines.stt.priority_executor import PriorityExecutor
from theo.engines.stt.stream_transcriber import (
    SAMPLE_RATE,
    StreamFrame,
    StreamSettings,
    StreamTranscriber,
)
from theo.manifest import EngineConfig
from theo.types import BatchResult, StreamTranscript, TranscribeParams, TranscriptKind, Word

Audio = npt.NDArray[np.float32]
Responder = Callable[[int, Audio, SegmentOptions], SegmentDecode]
HALF_SECOND = SAMPLE_RATE // 2


def decode_of(text: str, start: float = 0.0) -> SegmentDecode:
    words = tuple(
        Word(f" {w}", start + i * 0.5 + 0.05, start + i * 0.5 + 0.45, 0.8)
        for i, w in enumerate(text.split())
    )
    return SegmentDecode(text=text, words=words, language="en", confidence=0.8)


def scripted(*texts: str) -> Responder:
    """Answer the n-th decode call with the n-th text."""
    return lambda n, audio, options: decode_of(texts[n])


class FakeBackend(STTBackend):
    """An engine whose decodes are scripted; it records every call and its concurrency."""

    engine_name = "fake"
    decodes_after_prefix = True

    def __init__(self, respond: Responder, gate: threading.Event | None = None) -> None:
        self.respond = respond
        self.gate = gate
        self.calls: list[tuple[Audio, SegmentOptions]] = []
        self.running = 0
        self.max_running = 0
        self._lock = threading.Lock()

    def load(self, model_dir: Path, config: EngineConfig) -> LoadedModelInfo:
        raise NotImplementedError

    def transcribe(
        self, audio: Audio, params: TranscribeParams, cancel: threading.Event
    ) -> BatchResult:
        raise NotImplementedError

    def decode_segment(self, audio: Audio, options: SegmentOptions) -> SegmentDecode:
        with self._lock:
            index = len(self.calls)
            self.calls.append((audio, options))
            self.running += 1
            self.max_running = max(self.max_running, self.running)
        try:
            if self.gate is not None:
                assert self.gate.wait(10), "test never opened the gate"
            return self.respond(index, audio, options)
        finally:
            with self._lock:
                self.running -= 1

    def decode_segments(
        self, passes: Sequence[tuple[Audio, SegmentOptions]]
    ) -> list[SegmentDecode | Exception]:
        return [self.decode_segment(audio, options) for audio, options in passes]

    def tail_tokens(self, text: str, max_tokens: int) -> str:
        return " ".join(text.split()[-max_tokens:])


class Feed:
    """Frames pushed by the test; counts how often the transcriber asked for the next one."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[StreamFrame | None] = asyncio.Queue()
        self.pushed = 0
        self.requested = 0

    def push(self, samples: int = HALF_SECOND, **fields: object) -> None:
        audio = np.full(samples, 0.1, dtype=np.float32)
        self.queue.put_nowait(StreamFrame(audio=audio, **fields))  # type: ignore[arg-type]
        self.pushed += 1

    def close(self) -> None:
        self.queue.put_nowait(None)

    async def frames(self) -> AsyncIterator[StreamFrame]:
        while True:
            self.requested += 1
            frame = await self.queue.get()
            if frame is None:
                return
            yield frame


async def until(predicate: Callable[[], object], what: str, within_s: float = 5.0) -> None:
    deadline = time.monotonic() + within_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.002)


class Run:
    """A transcriber consuming a feed in the background, collecting its events."""

    def __init__(
        self,
        backend: FakeBackend,
        settings: StreamSettings | None = None,
        executor: PriorityExecutor | None = None,
    ) -> None:
        self.feed = Feed()
        self.transcriber = StreamTranscriber(backend, settings=settings, executor=executor)
        self.events: list[StreamTranscript] = []
        self.task = asyncio.create_task(self._consume())

    async def _consume(self) -> None:
        async for event in self.transcriber.events(self.feed.frames()):
            self.events.append(event)

    def texts(self, kind: TranscriptKind) -> list[str]:
        """The texts of ``kind``; for partials, only those that agreed on more words (the
        others bring only a new ``unstable_text``)."""
        texts: list[str] = []
        for event in self.events:
            if event.kind is kind and not (
                kind is TranscriptKind.PARTIAL and event.text == (texts[-1] if texts else "")
            ):
                texts.append(event.text)
        return texts

    async def finish(self) -> None:
        self.feed.close()
        await asyncio.wait_for(self.task, 5)


async def first_segment(run: Run) -> None:
    """Half a second of speech as segment 1, closed; wait for its final."""
    run.feed.push(enable_partials=False, segment_id=1)
    run.feed.push(0, is_last=True, enable_partials=False, segment_id=1)
    await until(lambda: len(run.events) == 1, "the first final")


async def test_partials_grow_append_only_and_the_final_comes_last() -> None:
    backend = FakeBackend(
        scripted("he", "he was", "he was not", "he was not an", "he was not an ill disposed man")
    )
    run = Run(backend, StreamSettings(final_beam_size=5))
    for n in range(1, 5):
        run.feed.push(segment_id=3, session_id="s1")
        await until(lambda n=n: len(backend.calls) == n, f"pass {n}")
    # is_last would drop a pass still in flight: let the fourth one land first.
    await until(lambda: len(run.events) == 4, "the fourth partial")
    run.feed.push(0, is_last=True, segment_id=3, session_id="s1")
    await until(lambda: run.texts(TranscriptKind.FINAL), "the final")
    await run.finish()

    # Each pass's words beyond the agreed ones come at once as unstable text.
    assert [e.text for e in run.events[:4]] == ["", "he", "he was", "he was not"]
    unstable = [e.unstable_text for e in run.events if e.kind is TranscriptKind.PARTIAL]
    assert unstable == ["he", "was", "not", "an"]
    assert run.texts(TranscriptKind.FINAL) == ["he was not an ill disposed man"]
    assert run.events[-1].kind is TranscriptKind.FINAL
    assert {e.segment_id for e in run.events} == {3}
    assert run.transcriber.session_id == "s1"
    partial_options = [options for _, options in backend.calls[:4]]
    assert {o.beam_size for o in partial_options} == {1}
    assert [o.prefix for o in partial_options] == [None, None, "he", "he was"]
    assert not any(o.final for o in partial_options)
    final_audio, final_options = backend.calls[-1]
    assert final_options.beam_size == 5
    # The final decodes the whole segment afresh: no committed words forced on it.
    assert (final_options.prefix, final_options.final) == (None, True)
    assert final_audio.size == 4 * HALF_SECOND
    final = run.events[-1]
    assert (final.start_ms, final.end_ms) == (50, 3450)
    assert final.language == "en"
    assert 0.0 <= final.confidence <= 1.0


async def test_finals_become_the_prompt_of_later_segments_with_hot_words() -> None:
    backend = FakeBackend(scripted("one two three four", "five six", "seven"))
    run = Run(backend, StreamSettings(context_tokens=3, final_context_s=0))
    await first_segment(run)
    assert run.transcriber.context == "two three four."
    common = {"enable_partials": False, "prompt": "Caller prompt.", "hot_words": ("Dashwood",)}
    run.feed.push(is_last=True, segment_id=2, **common)
    await until(lambda: len(run.events) == 2, "the second final")
    run.feed.push(is_last=True, segment_id=3, **common)
    await run.finish()

    prompts = [options.prompt for _, options in backend.calls]
    assert prompts == [None, "Caller prompt. two three four.", "Caller prompt. four. five six."]
    assert backend.calls[1][1].hot_words == ("Dashwood",)
    assert [e.segment_id for e in run.events] == [1, 2, 3]


async def test_no_partial_passes_when_partials_are_off() -> None:
    backend = FakeBackend(scripted("hello world"))
    run = Run(backend)
    for _ in range(4):
        run.feed.push(enable_partials=False)
    run.feed.push(0, is_last=True, enable_partials=False)
    await run.finish()

    assert len(backend.calls) == 1
    assert backend.calls[0][1].beam_size is None
    assert [e.kind for e in run.events] == [TranscriptKind.FINAL]


async def test_one_decode_at_a_time_and_no_partial_after_the_final() -> None:
    gate = threading.Event()
    backend = FakeBackend(scripted("he was", "he was not an ill disposed man"), gate=gate)
    feed = Feed()
    with ThreadPoolExecutor(max_workers=1) as executor:
        transcriber = StreamTranscriber(backend, executor=executor)
        events: list[StreamTranscript] = []

        async def consume() -> None:
            async for event in transcriber.events(feed.frames()):
                events.append(event)

        task = asyncio.create_task(consume())
        feed.push()
        await until(lambda: len(backend.calls) == 1, "the first pass")
        # Frames keep coming while the pass is stuck: they are read, not decoded.
        for _ in range(5):
            feed.push()
        feed.push(0, is_last=True)
        await until(lambda: feed.requested > feed.pushed, "all frames read")
        gate.set()
        feed.close()
        await asyncio.wait_for(task, 5)

    assert len(backend.calls) == 2
    assert backend.max_running == 1
    assert [e.kind for e in events] == [TranscriptKind.FINAL]
    assert backend.calls[1][0].size == 6 * HALF_SECOND


def timeline(count: int) -> list[Word]:
    """A perfect engine's view of the audio: word i spoken in [0.5 i + 0.05, 0.5 i + 0.45]."""
    return [Word(f" w{i}", i * 0.5 + 0.05, i * 0.5 + 0.45, 0.9) for i in range(count)]


def perfect_engine(n: int, audio: Audio, options: SegmentOptions) -> SegmentDecode:
    """Transcribe exactly the words inside the audio, reading its start time from the samples."""
    start = round(float(audio[0]) * 1e6) / SAMPLE_RATE
    end = start + audio.size / SAMPLE_RATE
    words = tuple(
        Word(w.word, w.start - start, w.end - start, w.probability)
        for w in timeline(20)
        if w.start >= start and w.end <= end
    )
    return SegmentDecode("".join(w.word for w in words), words, "en", 0.9)


async def test_long_segments_are_trimmed_and_the_final_keeps_the_dropped_words() -> None:
    backend = FakeBackend(perfect_engine)
    run = Run(backend, StreamSettings(trim_after_s=2.0, trim_keep_s=1.0))
    for n in range(8):
        # Each sample holds its own index, so the engine can tell where its audio starts.
        samples = np.arange(n * HALF_SECOND, (n + 1) * HALF_SECOND, dtype=np.float32) * 1e-6
        run.feed.queue.put_nowait(StreamFrame(audio=samples))
        await until(lambda n=n: len(backend.calls) == n + 1, f"pass {n + 1}")
    await until(lambda: len(run.texts(TranscriptKind.PARTIAL)) == 7, "the last partial")
    run.feed.push(0, is_last=True)
    await run.finish()

    starts = [round(float(audio[0]) * 1e6) / SAMPLE_RATE for audio, _ in backend.calls]
    # Trimmed at 1.5 s (in the gap after w2) once 2.5 s were held, then at 3.0 s.
    assert starts == [0.0] * 5 + [1.5, 1.5, 1.5, 3.0]
    held = [audio.size / SAMPLE_RATE for audio, _ in backend.calls]
    assert held == [0.5, 1.0, 1.5, 2.0, 2.5, 1.5, 2.0, 2.5, 1.0]
    assert backend.calls[6][1].prompt == "w0 w1 w2"
    assert backend.calls[6][1].prefix == "w3 w4"
    final = run.events[-1]
    assert final.kind is TranscriptKind.FINAL
    assert [w.word for w in final.words] == [w.word for w in timeline(8)]
    assert [w.start for w in final.words] == pytest.approx([w.start for w in timeline(8)])
    assert final.text == "w0 w1 w2 w3 w4 w5 w6 w7"
    partials = run.texts(TranscriptKind.PARTIAL)
    assert partials == [" ".join(f"w{i}" for i in range(k)) for k in range(1, 8)]


async def test_an_empty_segment_gets_an_empty_final_without_decoding() -> None:
    backend = FakeBackend(scripted())
    run = Run(backend)
    run.feed.push(0, is_last=True, segment_id=9)
    await run.finish()

    assert backend.calls == []
    assert [(e.kind, e.text, e.segment_id) for e in run.events] == [(TranscriptKind.FINAL, "", 9)]


async def test_input_ending_mid_segment_still_gets_its_final() -> None:
    backend = FakeBackend(scripted("hello"))
    run = Run(backend)
    run.feed.push(enable_partials=False, segment_id=4)
    await run.finish()

    assert [(e.kind, e.text, e.segment_id) for e in run.events] == [
        (TranscriptKind.FINAL, "hello", 4)
    ]


async def test_engine_errors_reach_the_consumer() -> None:
    def reject(n: int, audio: Audio, options: SegmentOptions) -> SegmentDecode:
        raise UnsupportedParameterError("language", "Unsupported language 'xx'.")

    run = Run(FakeBackend(reject))
    run.feed.push(language="xx")
    with pytest.raises(UnsupportedParameterError):
        await asyncio.wait_for(run.task, 5)


async def test_closing_the_stream_mid_decode_returns_at_once() -> None:
    gate = threading.Event()
    backend = FakeBackend(scripted("he"), gate=gate)
    feed = Feed()
    events = StreamTranscriber(backend).events(feed.frames())
    feed.push()

    async def first_event() -> StreamTranscript:
        return await anext(events)

    consumer = asyncio.create_task(first_event())
    await until(lambda: len(backend.calls) == 1, "the first pass")
    consumer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await consumer
    await asyncio.wait_for(events.aclose(), 1)
    gate.set()


async def test_a_bare_closing_frame_keeps_the_segment_options() -> None:
    backend = FakeBackend(scripted("ola mundo"))
    run = Run(backend)
    run.feed.push(enable_partials=False, language="pt", hot_words=("PIX",), segment_id=2)
    run.feed.push(0, is_last=True)
    await run.finish()

    options = backend.calls[0][1]
    assert (options.language, options.hot_words) == ("pt", ("PIX",))
    assert [(e.segment_id, e.language) for e in run.events] == [(2, "en")]


def push_pause(feed: Feed, samples: int, **fields: object) -> None:
    """Audio the API's VAD marks as a pause after speech (``speaker_paused``)."""
    feed.push(samples, speaker_paused=True, **fields)


async def test_a_pause_decodes_the_final_early_and_is_last_reuses_it() -> None:
    backend = FakeBackend(scripted("he was not", "he was not an ill disposed man"))
    run = Run(backend, StreamSettings(final_beam_size=5))
    run.feed.push(segment_id=1)
    await until(lambda: len(backend.calls) == 1, "the first partial pass")
    push_pause(run.feed, SAMPLE_RATE // 5, segment_id=1)  # 200 ms pause
    await until(lambda: len(backend.calls) == 2, "the early final")
    assert backend.calls[1][1].beam_size == 5
    push_pause(run.feed, SAMPLE_RATE // 10, segment_id=1)  # the VAD's silence wait goes on
    run.feed.push(0, is_last=True, segment_id=1)
    await until(lambda: run.texts(TranscriptKind.FINAL), "the final")
    await run.finish()
    assert len(backend.calls) == 2  # no second final decode
    assert run.texts(TranscriptKind.FINAL) == ["he was not an ill disposed man"]


async def test_the_early_final_is_sent_as_a_tentative_transcript() -> None:
    backend = FakeBackend(scripted("meu cpf", "meu cpf é um dois três"))
    run = Run(backend, StreamSettings(final_beam_size=5))
    run.feed.push(segment_id=1)
    await until(lambda: len(backend.calls) == 1, "the first partial pass")
    push_pause(run.feed, SAMPLE_RATE // 5, segment_id=1)
    await until(lambda: run.texts(TranscriptKind.TENTATIVE), "the tentative transcript")
    run.feed.push(0, is_last=True, segment_id=1)
    await until(lambda: run.texts(TranscriptKind.FINAL), "the final")
    await run.finish()
    # What the pause decoded, before the final (which reuses the same decode).
    assert run.texts(TranscriptKind.TENTATIVE) == ["meu cpf é um dois três"]
    assert run.texts(TranscriptKind.FINAL) == ["meu cpf é um dois três"]
    assert not run.texts(TranscriptKind.PARTIAL)  # one pass agrees on nothing yet
    kinds = [e.kind for e in run.events]
    assert kinds.index(TranscriptKind.TENTATIVE) < kinds.index(TranscriptKind.FINAL)


async def test_speech_after_a_pause_discards_the_early_final() -> None:
    backend = FakeBackend(scripted("he", "he was", "he was not", "he was not an ill man"))
    run = Run(backend, StreamSettings(final_beam_size=5))
    run.feed.push(segment_id=1)
    await until(lambda: len(backend.calls) == 1, "the first partial pass")
    push_pause(run.feed, SAMPLE_RATE // 5, segment_id=1)
    await until(lambda: len(backend.calls) == 2, "the early final")
    run.feed.push(segment_id=1)  # the speaker goes on
    await until(lambda: len(backend.calls) == 3, "a partial pass on the new speech")
    run.feed.push(0, is_last=True, segment_id=1)
    await until(lambda: run.texts(TranscriptKind.FINAL), "the final")
    await run.finish()
    final_audio, final_options = backend.calls[-1]
    assert len(backend.calls) == 4  # the stale early final was not used
    assert final_options.beam_size == 5
    assert final_audio.size == 2 * HALF_SECOND + SAMPLE_RATE // 5


async def _dictated_groups(second_decode: str) -> Run:
    """One segment held open across a long pause: "five five", 0.6 s of quiet, then more
    speech and a pause; the second early final (the final) answers ``second_decode``,
    its words timed after the first pause."""
    backend = FakeBackend(
        lambda n, audio, options: (
            decode_of("five five") if n == 0 else decode_of(second_decode, 1.7)
        )
    )
    run = Run(backend, StreamSettings(final_beam_size=5))
    for _ in range(2):
        run.feed.push(segment_id=1, enable_partials=False)  # 1 s of speech
    push_pause(run.feed, SAMPLE_RATE // 5, segment_id=1, enable_partials=False)
    await until(lambda: run.texts(TranscriptKind.TENTATIVE), "the first pause's words")
    push_pause(run.feed, SAMPLE_RATE * 2 // 5, segment_id=1, enable_partials=False)
    for _ in range(2):  # the speaker goes on after 0.6 s (the session waited: dictation)
        run.feed.push(segment_id=1, enable_partials=False)
    push_pause(run.feed, SAMPLE_RATE // 5, segment_id=1, enable_partials=False)
    await until(lambda: len(run.texts(TranscriptKind.TENTATIVE)) == 2, "the second pause's")
    run.feed.push(0, is_last=True, segment_id=1, enable_partials=False)
    await until(lambda: run.texts(TranscriptKind.FINAL), "the final")
    await run.finish()
    assert len(backend.calls) == 2
    # The words heard at the first pause lead the final's decode as its forced prefix.
    assert [options.prefix for _, options in backend.calls] == [None, "five five"]
    return run


async def test_words_before_a_held_pause_that_the_final_leaves_out_are_kept() -> None:
    """Whisper decoded "five five ... eight of spades" whole as "8 of spades": the words
    heard at the pause come back in front, even from a decode that skipped its prefix."""
    run = await _dictated_groups("eight of spades")
    assert run.texts(TranscriptKind.TENTATIVE) == ["five five", "five five eight of spades"]
    assert run.texts(TranscriptKind.FINAL) == ["five five eight of spades"]
    (final,) = run.events[-1:]
    assert [round(w.start, 2) for w in final.words][:3] == [0.05, 0.55, 1.75]


async def test_words_before_a_held_pause_are_not_doubled_when_the_final_has_them() -> None:
    """The decode starts with the prefix (timed after the pause): its words come once."""
    run = await _dictated_groups("five five eight of spades")
    assert run.texts(TranscriptKind.FINAL) == ["five five eight of spades"]


async def test_a_long_pause_anchors_its_words_even_when_they_come_after_the_speaker_resumed() -> (
    None
):
    """On a busy machine the pause's early final is still decoding when speech resumes:
    the final waits for it, and decodes as the idle machine did."""
    gate = threading.Event()
    backend = FakeBackend(
        lambda n, audio, options: decode_of("five five") if n == 0 else decode_of("eight", 1.7),
        gate=gate,
    )
    run = Run(backend, StreamSettings(final_beam_size=5))
    run.feed.push(segment_id=1, enable_partials=False)
    for samples in (SAMPLE_RATE // 10, SAMPLE_RATE // 2):  # the pause begins after 0.1 s
        push_pause(run.feed, samples, segment_id=1, enable_partials=False)
    await until(lambda: len(backend.calls) == 1, "the early final, held by the busy engine")
    run.feed.push(segment_id=1, enable_partials=False)  # the speaker resumes
    push_pause(run.feed, SAMPLE_RATE // 5, segment_id=1, enable_partials=False)
    run.feed.push(0, is_last=True, segment_id=1, enable_partials=False)
    await until(lambda: run.feed.requested > run.feed.pushed, "every frame read")
    assert len(backend.calls) == 1  # nothing decoded before the anchor is known
    gate.set()
    await until(lambda: run.texts(TranscriptKind.FINAL), "the final")
    await run.finish()
    assert [options.prefix for _, options in backend.calls] == [None, "five five"]
    assert run.texts(TranscriptKind.FINAL) == ["five five eight"]


async def test_a_short_pause_between_words_anchors_nothing() -> None:
    backend = FakeBackend(scripted("he was", "he was not an ill disposed man"))
    run = Run(backend, StreamSettings(final_beam_size=5))
    run.feed.push(segment_id=1, enable_partials=False)
    push_pause(run.feed, SAMPLE_RATE // 5, segment_id=1, enable_partials=False)  # 200 ms
    await until(lambda: run.texts(TranscriptKind.TENTATIVE), "the pause's words")
    run.feed.push(segment_id=1, enable_partials=False)
    run.feed.push(0, is_last=True, segment_id=1, enable_partials=False)
    await until(lambda: run.texts(TranscriptKind.FINAL), "the final")
    await run.finish()
    assert [options.prefix for _, options in backend.calls] == [None, None]
    assert run.texts(TranscriptKind.FINAL) == ["he was not an ill disposed man"]


async def test_passes_come_twice_as_often_until_the_first_words_are_committed() -> None:
    backend = FakeBackend(scripted("he", "he was", "he was not", "he was not an"))
    run = Run(backend, StreamSettings(partial_interval_s=0.5, first_interval_s=0.25))
    quarter = SAMPLE_RATE // 4
    for _ in range(2):  # nothing committed yet: a pass every 0.25 s of audio
        run.feed.push(quarter)
        await until(lambda: len(backend.calls) == run.feed.pushed, f"pass {run.feed.pushed}")
    await until(lambda: run.texts(TranscriptKind.PARTIAL) == ["he"], "the first partial")
    run.feed.push(quarter)  # "he" is committed: 0.25 s is no longer enough
    await asyncio.sleep(0.05)
    assert len(backend.calls) == 2
    run.feed.push(quarter)
    await until(lambda: len(backend.calls) == 3, "the pass after 0.5 s")
    await run.finish()

    assert [audio.size for audio, _ in backend.calls[:3]] == [quarter, 2 * quarter, 4 * quarter]


async def test_a_final_overtakes_other_streams_queued_partial_passes() -> None:
    executor = PriorityExecutor()
    gate, busy = threading.Event(), threading.Event()
    executor.submit(lambda: (busy.set(), gate.wait(5)))  # the shared inference thread is busy
    assert busy.wait(5)
    backend = FakeBackend(lambda n, audio, options: decode_of("words"))
    partials = Run(backend, executor=executor)
    final = Run(backend, executor=executor)
    partials.feed.push(segment_id=1, session_id="partials")
    await asyncio.sleep(0.05)  # its pass is queued first
    final.feed.push(is_last=True, enable_partials=False, segment_id=1, session_id="final")
    await asyncio.sleep(0.05)
    gate.set()
    await until(lambda: final.events and len(backend.calls) == 2, "both decodes")
    order = [options.beam_size for _, options in backend.calls]
    await partials.finish()
    await final.finish()
    executor.shutdown()

    assert order == [None, 1]  # the final's full beam ran before the queued greedy pass


async def test_an_early_final_that_stops_short_is_decoded_again_over_the_segment() -> None:
    """The first quiet window fell in a soft word's tail: Whisper left the phrase out."""
    backend = FakeBackend(scripted("he was", "he was not an ill disposed man"))
    run = Run(backend, StreamSettings(final_beam_size=5))
    for _ in range(4):
        run.feed.push(segment_id=1, enable_partials=False)  # 2 s of speech
    push_pause(run.feed, SAMPLE_RATE // 10, segment_id=1, enable_partials=False)
    await until(lambda: len(backend.calls) == 1, "the early final")
    push_pause(run.feed, SAMPLE_RATE // 5, segment_id=1, enable_partials=False)
    run.feed.push(0, is_last=True, segment_id=1, enable_partials=False)
    await until(lambda: run.texts(TranscriptKind.FINAL), "the final")
    await run.finish()
    # The early decode's words ended at 0.95 s of its 2.1 s: decoded again, whole segment.
    assert len(backend.calls) == 2
    assert backend.calls[1][0].size == 4 * HALF_SECOND + SAMPLE_RATE * 3 // 10
    assert run.texts(TranscriptKind.FINAL) == ["he was not an ill disposed man"]


async def test_a_long_pause_redecodes_a_short_early_final_before_is_last() -> None:
    """A dictation wait (1.5 s): the decode again runs during the pause, not after it."""
    backend = FakeBackend(scripted("he was", "he was not an ill disposed man"))
    run = Run(backend, StreamSettings(final_beam_size=5))
    for _ in range(4):
        run.feed.push(segment_id=1, enable_partials=False)  # 2 s of speech
    push_pause(run.feed, SAMPLE_RATE // 10, segment_id=1, enable_partials=False)
    await until(lambda: len(backend.calls) == 1, "the early final")
    await until(lambda: run.texts(TranscriptKind.TENTATIVE), "the early final's words")
    push_pause(run.feed, SAMPLE_RATE // 2, segment_id=1, enable_partials=False)
    await until(lambda: len(backend.calls) == 2, "the decode again, during the pause")
    push_pause(run.feed, SAMPLE_RATE, segment_id=1, enable_partials=False)
    run.feed.push(0, is_last=True, segment_id=1, enable_partials=False)
    await until(lambda: run.texts(TranscriptKind.FINAL), "the final")
    await run.finish()
    assert len(backend.calls) == 2  # nothing left to decode at is_last
    # The pause began with its first 0.1 s frame; the redo covers 0.4 s of it, however
    # late it starts: a busy machine decodes the same audio as an idle one.
    assert backend.calls[1][0].size == 4 * HALF_SECOND + SAMPLE_RATE // 2
    assert run.texts(TranscriptKind.FINAL) == ["he was not an ill disposed man"]


async def test_an_early_final_held_back_by_a_pass_still_covers_the_audio_to_the_pause() -> None:
    """On a busy machine the partial pass in flight delays the early final: it must still
    decode the audio up to where the pause began, as on an idle machine."""
    gate = threading.Event()
    backend = FakeBackend(scripted("he was", "he was not an ill disposed man"), gate=gate)
    run = Run(backend, StreamSettings(final_beam_size=5))
    run.feed.push(segment_id=1)
    await until(lambda: len(backend.calls) == 1, "the first partial pass")
    push_pause(run.feed, SAMPLE_RATE // 10, segment_id=1)  # the pause begins at 0.6 s
    push_pause(run.feed, SAMPLE_RATE // 10, segment_id=1)
    await until(lambda: run.feed.requested > run.feed.pushed, "the pause read")
    gate.set()
    await until(lambda: len(backend.calls) == 2, "the early final")
    push_pause(run.feed, SAMPLE_RATE // 10, segment_id=1)
    run.feed.push(0, is_last=True, segment_id=1)
    await until(lambda: run.texts(TranscriptKind.FINAL), "the final")
    await run.finish()

    early_audio, early_options = backend.calls[1]
    assert early_options.final
    assert early_audio.size == HALF_SECOND + SAMPLE_RATE // 10
    assert run.texts(TranscriptKind.FINAL) == ["he was not an ill disposed man"]


async def test_a_lasting_pause_starts_the_final_beside_a_partial_pass_in_flight() -> None:
    """A pause's final waits for the pass in flight only while the pause is short enough to
    be a gap between words; once it lasts 0.15 s the final starts beside the pass (on
    another engine lane, or ahead of other sessions' queued passes)."""
    gate = threading.Event()
    backend = FakeBackend(scripted("he was", "he was not an ill disposed man"), gate=gate)
    run = Run(backend, StreamSettings(final_beam_size=5), PriorityExecutor(lanes=2))
    run.feed.push(segment_id=1)
    await until(lambda: len(backend.calls) == 1, "the first partial pass")
    push_pause(run.feed, SAMPLE_RATE // 10, segment_id=1)  # the pause begins at 0.6 s
    push_pause(run.feed, SAMPLE_RATE // 10, segment_id=1)  # 0.1 s after it: maybe a gap
    await until(lambda: run.feed.requested > run.feed.pushed, "the short pause read")
    assert len(backend.calls) == 1  # the final waits for the pass
    push_pause(run.feed, SAMPLE_RATE // 10, segment_id=1)  # 0.2 s: a lasting pause
    await until(lambda: len(backend.calls) == 2, "the final beside the pass")
    assert backend.running == 2 and backend.calls[1][1].final
    gate.set()
    run.feed.push(0, is_last=True, segment_id=1)
    await until(lambda: run.texts(TranscriptKind.FINAL), "the final")
    await run.finish()

    assert len(backend.calls) == 2  # the final is the early decode
    assert backend.calls[1][0].size == HALF_SECOND + SAMPLE_RATE // 10  # up to the pause
    assert run.texts(TranscriptKind.FINAL) == ["he was not an ill disposed man"]


async def _two_passes_then_the_final(backend: FakeBackend) -> Run:
    """Two partial passes that commit words, then is_last: the finished run."""
    run = Run(backend, StreamSettings(final_beam_size=5, first_interval_s=0.5))
    for n in range(1, 3):
        run.feed.push(segment_id=1)
        await until(lambda n=n: len(backend.calls) == n, f"pass {n}")
    await until(lambda: run.texts(TranscriptKind.PARTIAL), "the committed words")
    run.feed.push(0, is_last=True, segment_id=1)
    await until(lambda: run.texts(TranscriptKind.FINAL), "the final")
    await run.finish()
    return run


async def test_the_final_decodes_the_segment_afresh_and_may_correct_committed_words() -> None:
    """Words committed from the first half second ("addy married") are decoded again with
    the whole segment; the final says what the segment's audio says, as batch would."""
    backend = FakeBackend(scripted("addy married", "addy married a", "had he married a more"))
    run = await _two_passes_then_the_final(backend)

    assert run.texts(TranscriptKind.PARTIAL) == ["addy married"]
    assert run.texts(TranscriptKind.FINAL) == ["had he married a more"]
    assert backend.calls[-1][1].prefix is None


async def test_a_final_heard_as_nothing_keeps_the_committed_words() -> None:
    backend = FakeBackend(scripted("he was", "he was", ""))
    run = await _two_passes_then_the_final(backend)

    assert run.texts(TranscriptKind.FINAL) == ["he was"]


async def test_earlier_finals_do_not_prompt_later_segments_by_default() -> None:
    """Measured: Whisper copies a short earlier final into the next segment."""
    backend = FakeBackend(scripted("ten of clubs", "seven of clubs"))
    run = Run(backend, StreamSettings(final_context_s=0))
    await first_segment(run)
    run.feed.push(is_last=True, segment_id=2, enable_partials=False, prompt="Cards.")
    await run.finish()

    assert [options.prompt for _, options in backend.calls] == [None, "Cards."]
    assert run.texts(TranscriptKind.FINAL) == ["ten of clubs", "seven of clubs"]


async def test_a_final_ending_with_its_audio_is_not_decoded_again() -> None:
    backend = FakeBackend(scripted("he was", "he was", "he was not an"))
    run = Run(backend, StreamSettings(final_beam_size=5, first_interval_s=0.5))
    for n in range(1, 3):
        run.feed.push(segment_id=1)
        await until(lambda n=n: len(backend.calls) == n, f"pass {n}")
    run.feed.push(segment_id=1, enable_partials=False)
    run.feed.push(segment_id=1, enable_partials=False)  # 2 s held, words to 1.95 s
    run.feed.push(0, is_last=True, segment_id=1)
    await until(lambda: run.texts(TranscriptKind.FINAL), "the final")
    await run.finish()
    assert len(backend.calls) == 3
    assert run.texts(TranscriptKind.FINAL) == ["he was not an"]


def behind_the_context(new_text: str) -> Responder:
    """A decode with a prefix reads the prefix over all but the last 0.4 s of the audio and
    ``new_text`` in it; the first decode reads "ever tried", a later one without prefix
    (the final alone) an unsure "everfired"."""

    def respond(n: int, audio: Audio, options: SegmentOptions) -> SegmentDecode:
        if options.prefix is None:
            if not n:
                return decode_of("ever tried")
            return SegmentDecode("everfired", (Word(" everfired", 0.05, 0.4, 0.4),), "en", 0.4)
        end = audio.size / SAMPLE_RATE
        prefix = [
            Word(f" {w}", 0.05 + i * 0.1, 0.1 + i * 0.1, 0.9)
            for i, w in enumerate(options.prefix.split())
        ]
        new = [Word(f" {w}", end - 0.35, end - 0.05, 0.7) for w in new_text.split()]
        text = " ".join([options.prefix, new_text])
        return SegmentDecode(text=text, words=(*prefix, *new), language="en", confidence=0.8)

    return respond


async def test_a_final_is_decoded_behind_the_previous_finals_audio_and_text() -> None:
    """A short segment ("Ever failed." alone) is heard in context: the previous final's
    audio in front of its own, its text forced as the prefix, only the new words kept."""
    backend = FakeBackend(behind_the_context("failed"))
    run = Run(backend)
    await first_segment(run)
    run.feed.push(enable_partials=False, segment_id=2)
    run.feed.push(is_last=True, enable_partials=False, segment_id=2)
    await run.finish()

    assert run.texts(TranscriptKind.FINAL) == ["ever tried", "failed"]
    (first_audio, first), (second_audio, second), (alone_audio, alone) = backend.calls
    assert first.prefix is None and first_audio.size == HALF_SECOND
    assert second.prefix == "ever tried" and second.final
    assert second_audio.size == HALF_SECOND + 2 * HALF_SECOND
    # Also decoded alone; the surer reading, in context, won.
    assert alone.prefix is None and alone_audio.size == 2 * HALF_SECOND
    # Word times are on the segment's own clock again.
    final = run.events[-1]
    assert (final.start_ms, final.end_ms) == (650, 950)
    assert final.words[0].probability == 0.7


async def test_a_context_decode_with_nothing_new_is_decoded_again_alone() -> None:
    def respond(n: int, audio: Audio, options: SegmentOptions) -> SegmentDecode:
        if options.prefix is not None:
            return decode_of(options.prefix)  # the prefix and nothing after it
        return decode_of(["ever tried", "no matter"][min(n, 1)])

    backend = FakeBackend(respond)
    run = Run(backend)
    await first_segment(run)
    run.feed.push(is_last=True, enable_partials=False, segment_id=2)
    await run.finish()

    assert run.texts(TranscriptKind.FINAL) == ["ever tried", "no matter"]
    assert [options.prefix for _, options in backend.calls] == [None, "ever tried", None]
    assert backend.calls[-1][0].size == HALF_SECOND


async def test_no_final_context_when_switched_off() -> None:
    backend = FakeBackend(scripted("ever tried", "ever failed"))
    run = Run(backend, StreamSettings(final_context_s=0))
    await first_segment(run)
    run.feed.push(is_last=True, enable_partials=False, segment_id=2)
    await run.finish()

    assert [options.prefix for _, options in backend.calls] == [None, None]
    assert [audio.size for audio, _ in backend.calls] == [HALF_SECOND, HALF_SECOND]


async def test_a_pass_outlasting_the_silence_wait_still_leaves_the_final_at_the_pause() -> None:
    """On a busy machine the pass in flight can outlast the VAD's whole silence wait, so no
    early final ever started: the final must still decode the audio up to where the pause
    began, as an idle machine's early final does, not 0.4 s more of the pause."""
    gate = threading.Event()
    backend = FakeBackend(scripted("he was", "he was not an ill disposed man"), gate=gate)
    run = Run(backend, StreamSettings(final_beam_size=5))
    run.feed.push(segment_id=1)
    await until(lambda: len(backend.calls) == 1, "the first partial pass")
    for _ in range(5):  # 0.5 s of pause; the pause's first frame ends at 0.6 s
        push_pause(run.feed, SAMPLE_RATE // 10, segment_id=1)
    run.feed.push(0, is_last=True, segment_id=1)
    await until(lambda: run.feed.requested > run.feed.pushed, "is_last read")
    gate.set()
    await until(lambda: run.texts(TranscriptKind.FINAL), "the final")
    await run.finish()

    assert len(backend.calls) == 2
    final_audio, final_options = backend.calls[1]
    assert final_options.final
    assert final_audio.size == HALF_SECOND + SAMPLE_RATE // 10  # as the early final's
    assert run.texts(TranscriptKind.FINAL) == ["he was not an ill disposed man"]


async def test_a_finals_context_is_its_decoded_audio_not_the_pause_that_ended_it() -> None:
    """How long a pause runs before its segment ends depends on when the pause's words
    came (later on a busy machine): the next final's context must not."""
    backend = FakeBackend(behind_the_context("failed"))
    run = Run(backend, StreamSettings(final_beam_size=5))
    run.feed.push(enable_partials=False, segment_id=1)
    push_pause(run.feed, SAMPLE_RATE // 10, enable_partials=False, segment_id=1)
    await until(lambda: backend.calls, "the early final")
    for _ in range(3):  # the segment ends 0.3 s later than the pause's first frame
        push_pause(run.feed, SAMPLE_RATE // 10, enable_partials=False, segment_id=1)
    run.feed.push(0, is_last=True, enable_partials=False, segment_id=1)
    run.feed.push(enable_partials=False, segment_id=2)
    run.feed.push(is_last=True, enable_partials=False, segment_id=2)
    await run.finish()

    assert run.texts(TranscriptKind.FINAL) == ["ever tried", "failed"]
    (early_audio, _), (second_audio, second), _alone = backend.calls
    assert early_audio.size == HALF_SECOND + SAMPLE_RATE // 10
    assert second.prefix == "ever tried"
    assert second_audio.size == early_audio.size + 2 * HALF_SECOND
