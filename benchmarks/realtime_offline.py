"""Realtime finals without the clock: accuracy.py's realtime clip through a session's
front end and Theo's stream transcriber, in this process, in about a minute per model.

``accuracy.py`` streams its joined recordings through ``theo serve`` at real-time pace
(two minutes of audio per model and audio set). This script decodes the same clip the way
a session and its worker do, as fast as the CPU allows, so an idea for realtime finals
(context budget, encoder window, audio around a segment) can be tried on every model and
both audio sets in a few minutes, next to the raw engine on each recording alone:

* **raw engine**: ``accuracy.py``'s raw row (faster-whisper called directly on each
  recording, batch decoding options);
* **offline realtime finals**: the recordings joined 1 s apart (``accuracy.joined_clip``,
  1.5 s of silence after), cut into 20 ms PCM16 frames, run through what a session runs
  (:class:`~theo.session.segmenter.Segmenter` with the model's default preprocessing
  chain, the VAD with the session's default sensitivity, pre-roll and dictation wait) and
  fed, quantised to PCM16 as the session sends them, to a
  :class:`~theo.engines.stt.stream_transcriber.StreamTranscriber` over the model's
  :class:`~theo.engines.stt.faster_whisper_backend.FasterWhisperBackend`. A pause ends its
  segment once it has lasted ``vad_silence_ms`` and its words (the worker's tentative
  transcript) came, unless they end inside a dictated entity: the session's rule
  (``theo.session.speech``), emulated here without its clock.

Without a clock, partial passes run only as often as the frames leave the engine free;
finals do not depend on them (a final is decoded from its segment's audio and the earlier
finals, the property ``tests/integration/test_realtime_accuracy_e2e.py`` checks on a busy
machine), so the finals are those of a session at real-time pace: compare with
``accuracy.py``'s "theo realtime finals" row before trusting a difference.
``--shifts-ms`` streams the clip once per value behind that much silence and reports the
mean: segments then start a few ms apart, and Whisper flips single words on that, so one
run is one noisy sample. ``--context-total-s`` decodes the clip once per value of
``theo.engines.stt.final_context._TOTAL_S`` (context and segment audio together; the
module constant is patched, so the rows are what that default would give).

Usage (from the repository root)::

    .venv/bin/python benchmarks/realtime_offline.py --theo-home /tmp/acc/home
    .venv/bin/python benchmarks/realtime_offline.py --models faster-whisper-base \
        --audio 8k --context-total-s 4,6,8,10 --json offline.json
    .venv/bin/python benchmarks/realtime_offline.py --shifts-ms 0,7,13,21
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from accuracy import (
    DEFAULT_DATA_DIR,
    DEFAULT_MODELS,
    DEFAULT_REALTIME_MAX_S,
    LANGUAGE,
    TAIL_SILENCE_S,
    DataSet,
    RawEngine,
    Recording,
    Score,
    attribute,
    joined_clip,
    load_data,
    print_table,
    realtime_selection,
    score_each,
)
from harness import ensure_model, log
from streaming import StreamClip

from theo.audio.pcm import float_to_pcm16, pcm16_to_float
from theo.engines.stt import final_context
from theo.engines.stt.faster_whisper_backend import FasterWhisperBackend
from theo.engines.stt.stream_transcriber import StreamFrame, StreamTranscriber
from theo.manifest import ModelManifest
from theo.preprocessing.chain import PreprocessingChain
from theo.session.config import SessionConfig
from theo.session.dictation import ends_inside_entity
from theo.session.segmenter import Segmenter, SegmentEvent, SpeechEnded, SpeechStarted
from theo.session.speech import _endpoint_silence_ms
from theo.types import TranscriptKind
from theo.vad.detector import VADDetector

FRAME_MS = 20
_WORDS_POLL_S = 0.05

_Queue = asyncio.Queue[StreamFrame | None]


@dataclass
class Row:
    model: str
    audio: str
    config: str
    score: Score
    texts: dict[str, str]
    runs: int = 1
    """Runs summed in ``score`` (the clip at several shifts)."""


class OfflineSession:
    """One session's front end and its worker's transcriber, without the clock."""

    def __init__(
        self,
        backend: FasterWhisperBackend,
        manifest: ModelManifest,
        rate: int,
        stages_off: tuple[str, ...] = (),
    ):
        config = SessionConfig()
        self.config = config
        preprocessing = manifest.preprocessing.for_input_rate(rate)
        preprocessing = preprocessing.model_copy(update=dict.fromkeys(stages_off, False))
        chain = PreprocessingChain.build(preprocessing, rate)
        # The session's own VAD wait (the dictation window); see run() for the shorter one.
        self.vad = VADDetector(
            sensitivity=config.vad_sensitivity, min_silence_ms=_endpoint_silence_ms(config)
        )
        self.segmenter = Segmenter(chain, self.vad, preroll_ms=config.vad_prefix_padding_ms)
        self.transcriber = StreamTranscriber(backend)
        self.frames: _Queue = asyncio.Queue()
        self.finals: dict[int, str] = {}
        self.tentative: dict[int, str] = {}
        self.words_came = asyncio.Event()
        self.segment = 0

    def send(self, samples: np.ndarray, *, is_last: bool = False, paused: bool = False) -> None:
        """What the session sends its worker: PCM16 audio of the open segment, read back
        as the worker reads it."""
        self.frames.put_nowait(
            StreamFrame(
                audio=pcm16_to_float(float_to_pcm16(samples)),
                is_last=is_last,
                segment_id=self.segment,
                language=LANGUAGE,
                speaker_paused=paused,
            )
        )

    async def _events(self) -> None:
        async def frames() -> AsyncIterator[StreamFrame]:
            while (frame := await self.frames.get()) is not None:
                yield frame

        async for event in self.transcriber.events(frames()):
            if event.kind is TranscriptKind.FINAL:
                self.finals[event.segment_id] = event.text
            elif event.kind is TranscriptKind.TENTATIVE and self.vad.pausing:
                # As the session: words that come after the speaker resumed are stale.
                self.tentative[event.segment_id] = event.text
                self.words_came.set()

    def _apply(self, events: list[SegmentEvent]) -> None:
        nothing = np.zeros(0, dtype=np.float32)
        for event in events:
            if isinstance(event, SpeechStarted):
                self.segment += 1
            elif isinstance(event, SpeechEnded):
                self.send(nothing, is_last=True)
            else:
                if not event.paused:  # speech resumed: the pause's words are no longer news
                    self.tentative.pop(self.segment, None)
                self.send(event.samples, paused=event.paused)

    async def _pause_words(self) -> str | None:
        """The words up to the current pause, once the worker sent them (None: speech
        resumed first)."""
        while self.segment not in self.tentative and self.vad.pausing:
            self.words_came.clear()
            # The worker's decode runs in a thread: wait for its words a little at a time.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.words_came.wait(), _WORDS_POLL_S)
        return self.tentative.get(self.segment)

    async def run(self, clip: StreamClip) -> str:
        """Stream ``clip`` and its tail silence; the finals joined."""
        worker = asyncio.create_task(self._events())
        tail = bytes(2 * round(TAIL_SILENCE_S * clip.sample_rate))
        audio = pcm16_to_float(clip.pcm16 + tail)
        step = clip.sample_rate * FRAME_MS // 1000
        for start in range(0, audio.size, step):
            self._apply(self.segmenter.process(audio[start : start + step]))
            await asyncio.sleep(0)  # the transcriber takes the frame
            paused_long = self.vad.quiet_ms >= self.config.vad_silence_ms
            if self.segmenter.in_segment and self.vad.pausing and paused_long:
                words = await self._pause_words()
                ends = words is not None and not ends_inside_entity(words)
                if ends and self.segmenter.end_pause() is not None:
                    self.send(np.zeros(0, dtype=np.float32), is_last=True)
        self.frames.put_nowait(None)
        await worker
        return " ".join(self.finals[k].strip() for k in sorted(self.finals) if self.finals[k])


def shifted(clip: StreamClip, shift_ms: int) -> StreamClip:
    """``clip`` behind ``shift_ms`` of silence: the VAD's windows and the 20 ms frames fall
    elsewhere on the speech, so segments start and end a few samples apart."""
    lead = bytes(2 * round(shift_ms * clip.sample_rate / 1000))
    return dataclasses.replace(clip, pcm16=lead + clip.pcm16)


@dataclass(frozen=True)
class Runs:
    """How each configuration's row is run: the clip at each shift, these stages off."""

    shifts_ms: tuple[int, ...] = (0,)
    stages_off: tuple[str, ...] = ()


def offline_row(
    model: str,
    backend: FasterWhisperBackend,
    manifest: ModelManifest,
    audio: str,
    chosen: list[Recording],
    clip: StreamClip,
    total_s: float,
    runs: Runs,
) -> Row:
    """The clip streamed once per shift; the score sums every run (``Row.runs`` of them)."""
    final_context._TOTAL_S = total_s
    score = Score()
    per_recording: dict[str, int] = {}
    texts: dict[str, str] = {}
    label = f"offline realtime finals, context+segment {total_s:g} s"
    if runs.stages_off:
        label += f", {'/'.join(runs.stages_off)} off"
    for shift_ms in runs.shifts_ms:
        began = time.perf_counter()
        session = OfflineSession(backend, manifest, clip.sample_rate, runs.stages_off)
        text = asyncio.run(session.run(shifted(clip, shift_ms)))
        seconds = time.perf_counter() - began
        run = Score()
        run.add("*", clip.reference or "", text)
        score.add(f"*{shift_ms}", clip.reference or "", text)
        for name, count in attribute(chosen, text).items():
            per_recording[name] = per_recording.get(name, 0) + count
        texts["*" if shift_ms == runs.shifts_ms[0] else f"*{shift_ms}"] = text
        log(
            f"{model} {audio} {label}, shift {shift_ms} ms: {run.errors} errors, "
            f"{run.spelled_errors} spelled, of {run.words} in {seconds:.0f} s"
        )
    score.per_recording = per_recording
    return Row(model, audio, label, score, texts, runs=len(runs.shifts_ms))


def model_rows(
    model: str,
    model_dir: Path,
    sets: dict[str, list[Recording]],
    totals: list[float],
    runs: Runs,
) -> list[Row]:
    rows: list[Row] = []
    chosen = {
        audio: realtime_selection(recs, DEFAULT_REALTIME_MAX_S) for audio, recs in sets.items()
    }
    engine = RawEngine(model_dir)
    for audio, recordings in chosen.items():
        texts = {r.name: engine.transcribe(r) for r in recordings}
        rows.append(Row(model, audio, "raw engine", score_each(recordings, texts), texts))
    del engine
    manifest = ModelManifest.load(model_dir)
    backend = FasterWhisperBackend()
    backend.load(model_dir, manifest.engine_config)
    default_total = final_context._TOTAL_S
    try:
        for audio, recordings in chosen.items():
            clip = joined_clip(audio, recordings)
            for total_s in totals:
                rows.append(
                    offline_row(model, backend, manifest, audio, recordings, clip, total_s, runs)
                )
    finally:
        final_context._TOTAL_S = default_total
    return rows


def audio_sets(data: DataSet, which: str) -> dict[str, list[Recording]]:
    sets: dict[str, list[Recording]] = {}
    if which in ("both", "native"):
        sets["native"] = data.recordings
    if which in ("both", "8k"):
        sets["8 kHz"] = [r.telephone() for r in data.recordings]
    return sets


def report(rows: list[Row]) -> None:
    headers = ["model", "audio", "configuration", "words", "errors", "spelled", "recordings"]
    table = []
    for row in rows:
        per_run = row.score.per_recording.items()
        moved = ", ".join(f"{k} {v / row.runs:g}" for k, v in per_run if v)
        table.append(
            [
                row.model,
                row.audio,
                row.config + (f" (mean of {row.runs} shifts)" if row.runs > 1 else ""),
                str(row.score.words // row.runs),
                f"{row.score.errors / row.runs:g} ({row.score.wer:.1%})",
                f"{row.score.spelled_errors / row.runs:g} ({row.score.spelled_wer:.1%})",
                moved or "none",
            ]
        )
    print_table(headers, table)
    print(
        "\nspelled = errors with lone numbers 0-10 spelled as words on both sides (what ITN "
        "prints either way); recordings = errors per recording."
    )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS))
    parser.add_argument("--audio", choices=("both", "native", "8k"), default="both")
    parser.add_argument(
        "--theo-home", type=Path, default=None, help="models pulled there where missing"
    )
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument(
        "--context-total-s",
        default=str(final_context._TOTAL_S),
        help="comma-separated budgets of context and segment audio, one row each",
    )
    parser.add_argument(
        "--shifts-ms",
        default="0",
        help="comma-separated silences (ms) put before the clip, one run each; the row "
        "averages them (a word Whisper flips on where a segment starts is noise, not a "
        "difference between configurations)",
    )
    parser.add_argument(
        "--stages-off",
        default="",
        help="comma-separated preprocessing stages switched off in the session's chain "
        "(dc_remove, gain_normalize)",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write every transcript")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    totals = [float(v) for v in args.context_total_s.split(",")]
    runs = Runs(
        shifts_ms=tuple(int(v) for v in args.shifts_ms.split(",")),
        stages_off=tuple(v for v in args.stages_off.split(",") if v),
    )
    data = load_data(args.data_dir.expanduser().resolve())
    for note in data.notes:
        log(note)
    sets = audio_sets(data, args.audio)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="theo-offline-") as workdir:
        home = args.theo_home.expanduser().resolve() if args.theo_home else Path(workdir)
        for model in args.models:
            model_dir = ensure_model(home, model, Path(workdir) / "pull.log")
            rows.extend(model_rows(model, model_dir, sets, totals, runs))
    report(rows)
    if args.json:
        payload = [
            {"model": r.model, "audio": r.audio, "config": r.config, "texts": r.texts} for r in rows
        ]
        args.json.write_text(json.dumps(payload, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
