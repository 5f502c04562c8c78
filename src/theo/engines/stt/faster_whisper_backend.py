"""faster-whisper (CTranslate2) engine."""

from __future__ import annotations

import contextlib
import itertools
import math
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from theo.cores import available_cores
from theo.engines.stt.backend import (
    BatchControl,
    CancelledByClient,
    LoadedModelInfo,
    SegmentDecode,
    SegmentOptions,
    STTCapabilities,
)
from theo.engines.stt.long_audio_plan import (
    LongAudioPlan,
    Tail,
    find_speech,
    plan_long_audio,
    without_repeated_opening,
)
from theo.logging import get_logger
from theo.manifest import EngineConfig
from theo.types import BatchResult, Segment, Task, TranscribeParams, Word

log = get_logger("worker.stt.faster_whisper")

# Whisper keeps at most this many prompt tokens (half its 448-token context, minus one).
_MAX_PROMPT_TOKENS = 223
_SAMPLE_RATE = 16_000  # faster-whisper's input rate
_WINDOW_SAMPLES = 30 * _SAMPLE_RATE
_SECONDS_PER_FRAME = 0.01  # Whisper's mel hop: 160 samples at 16 kHz
# Streaming passes feed the encoder the segment plus a little silence instead of Whisper's
# full 30 s window: the encoder's cost grows faster than linearly with its input (on 2 CPU
# cores, tiny.en: 375 ms for 30 s, 33 ms for 10 s) and transcripts of the fixtures are
# word-for-word the same. Below 10 s of input, short partial passes lose their first word
# more often, so that is the floor. Finals get a 15 s floor: on a 10 s window tiny.en
# reads a short utterance twice ("10 of clubs 10 of clubs"); over the accuracy benchmark's
# recordings decoded one by one, tiny.en made 12 errors in 92 words at 10 s and 8 at 15 s
# (base: 11 both), for about 50 ms more per final.
_MIN_ENCODER_FRAMES = 1_000
_MIN_FINAL_ENCODER_FRAMES = 1_500
_ENCODER_PAD_FRAMES = 100
# Fast speech is ~4 tokens/s; the cap stops a repetition loop from running to 448 tokens.
_MAX_TOKENS_PER_S = 10
_HALLUCINATION_SILENCE_S = 1.0
# A greedy pass can get stuck repeating a token or two ("an ill-s-y-y-y-y-y..."), and
# every word after the loop is lost; once committed, the loop also becomes the final's
# prefix. Whisper retries such a decode by sampling at a higher temperature, which would
# make transcripts depend on chance. A loop here is a pattern of up to 4 tokens said 6
# times in a row, a decode that hits the token cap, or text that compresses like a loop
# (Whisper's threshold); it is decoded again with the model's beam, which, measured on
# trimmed LibriVox segments where tiny.en's greedy passes looped, read every one
# correctly. A decode already at that beam retries forbidding any repeated 6-token run.
_LOOP_MAX_PERIOD = 4
_LOOP_MIN_REPEATS = 6
_LOOP_COMPRESSION_RATIO = 2.4
_LOOP_NO_REPEAT_NGRAM = 6
# faster-whisper's defaults: punctuation merged into the neighbouring word's timestamps.
_PREPEND = "\"'\u201c\u00bf([{-"
_APPEND = "\"'.\u3002,\uff0c!\uff01?\uff1f:\uff1a\u201d)]}\u3001"


def resolve_device(device: str, compute_type: str) -> tuple[str, str]:
    """Turn ``auto`` settings into a concrete device and compute type.

    ``auto`` picks CUDA with float16 when a GPU is visible, otherwise CPU with int8.
    """
    import ctranslate2  # noqa: PLC0415 - engines are imported lazily, inside the worker only

    if device == "auto":
        device = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
    if compute_type == "auto":
        compute_type = "float16" if device == "cuda" else "int8"
    return device, compute_type


def resolve_long_audio_batch(device: str, setting: object) -> int:
    """Windows decoded per engine call for long audio whose segments may be coarse (0: decide).

    ``engine_config.long_audio_batch``: 0 means 2 on a CPU and 8 on CUDA; 1 turns batched
    decoding off. Measured on one CPU thread (an engine lane on 2 cores), 86 s of LibriVox
    and Dickens with tiny.en: 5.3 s one window after another, 3.1 s two windows per call,
    3.4 s four; the longest engine call 990, 1147 and 1696 ms. Two windows buy the whole
    gain while a call holds a lane (and delays a cancel) hardly longer than one window's.

    Raises:
        ValueError: the setting is not a whole number in 0-64.
    """
    if isinstance(setting, bool) or not isinstance(setting, int) or not 0 <= setting <= 64:
        raise ValueError(f"engine_config.long_audio_batch must be 0-64, not {setting!r}")
    if setting:
        return setting
    return 2 if device == "cpu" else 8


def resolve_lanes(device: str, lanes: int, cpu_threads: int, cores: int) -> tuple[int, int]:
    """Engine calls at once and CTranslate2 threads per call, from the settings (0: decide).

    On the CPU, ``lanes`` 0 means 2 (1 on a single core), and every lane runs with the
    worker's cores (``cpu_threads``, else ``cores``): a lone call, the usual case with one
    or two sessions, gets them all, and calls side by side share them. Measured on 2 AMD
    EPYC (AVX2) cores with tiny.en (benchmarks/README.md, "Engine lanes"): a lone final
    takes 271 ms on 2 lanes of two threads, 380 ms on 2 lanes of one thread, 287 ms on one
    lane of two; two finals side by side 265, 193 and 317 ms each. An earlier 2-core
    machine (AVX-512) decoded a lone final faster on one thread (237 ms against 276): a
    manifest with ``lanes: 2`` and ``cpu_threads: 1`` gets that layout. One lane keeps the old
    behaviour: one call at a time, with the engine's own thread count. On CUDA one lane
    unless asked for more.
    """
    if device != "cpu":
        return max(lanes, 1), cpu_threads
    share = cpu_threads or cores
    lanes = lanes or min(2, share)
    if lanes == 1:
        return 1, cpu_threads
    return lanes, share


def build_prompt(prompt: str | None, hot_words: tuple[str, ...]) -> str | None:
    """Merge hot words into Whisper's initial prompt so the decoder is biased towards them."""
    parts = []
    if hot_words:
        parts.append(", ".join(hot_words) + ".")
    if prompt:
        parts.append(prompt)
    return " ".join(parts) if parts else None


def _encoder_frames(frames: int, final: bool = False) -> int:
    """Mel frames given to the encoder for ``frames`` of audio: padded, rounded up to 1 s."""
    padded = -(-(frames + _ENCODER_PAD_FRAMES) // 100) * 100
    floor = _MIN_FINAL_ENCODER_FRAMES if final else _MIN_ENCODER_FRAMES
    return min(max(padded, floor), 3_000)


def _repeats(tokens: Sequence[int]) -> bool:
    """Whether a pattern of up to ``_LOOP_MAX_PERIOD`` tokens repeats back to back
    ``_LOOP_MIN_REPEATS`` times in ``tokens``."""
    for period in range(1, _LOOP_MAX_PERIOD + 1):
        needed = period * (_LOOP_MIN_REPEATS - 1)
        run = 0
        for i in range(period, len(tokens)):
            run = run + 1 if tokens[i] == tokens[i - period] else 0
            if run >= needed:
                return True
    return False


def _looped(new_tokens: Sequence[int], cap: int, text: str) -> bool:
    """Whether a decode that generated ``new_tokens`` (at most ``cap``) got stuck in a loop."""
    if len(new_tokens) >= cap or _repeats(new_tokens):
        return True
    return _compression_ratio(text) > _LOOP_COMPRESSION_RATIO


def _compression_ratio(text: str) -> float:
    """How well ``text`` compresses (Whisper's measure of a looping decode; 0 if empty)."""
    data = text.encode()
    return len(data) / len(zlib.compress(data)) if data else 0.0


def _evenly_timed(
    tokenizer: Any, tokens: list[int], duration: float, probability: float
) -> tuple[Word, ...]:
    """Words of ``tokens`` spread evenly over ``duration`` (when alignment is unavailable)."""
    pieces, _ = tokenizer.split_to_word_tokens([*tokens, tokenizer.eot])
    texts: list[str] = []
    for piece in pieces:
        if texts and piece and all(c in _APPEND for c in piece):
            texts[-1] += piece  # punctuation joins its word, as aligned words do
        elif piece.strip():
            texts.append(piece)
    step = duration / max(len(texts), 1)
    return tuple(
        Word(text, index * step, (index + 1) * step, probability)
        for index, text in enumerate(texts)
    )


def _confidence(words: tuple[Word, ...], avg_logprobs: list[float]) -> float:
    """Mean word probability, or the decoder's mean token probability without words."""
    if words:
        value = sum(w.probability for w in words) / len(words)
    elif avg_logprobs:
        value = math.exp(sum(avg_logprobs) / len(avg_logprobs))
    else:
        value = 0.0
    return min(max(value, 0.0), 1.0)


_EngineCall = Callable[[], contextlib.AbstractContextManager[None]]


class _Checkpointed:
    """The CTranslate2 Whisper model, making each of its engine calls inside the current
    thread's checkpoint (a batch request's :meth:`BatchControl.engine_call`).

    faster-whisper's ``transcribe`` makes these calls itself, window by window; wrapping
    the model is how a batch request gets a say between them. Streaming decodes run on
    other threads, with no checkpoint, and go straight through.
    """

    _CALLS = frozenset({"encode", "generate", "detect_language", "align"})

    def __init__(self, model: Any) -> None:
        self._model = model
        self._local = threading.local()

    def checkpoint(self, engine_call: _EngineCall | None) -> None:
        """Set (or clear, with ``None``) the calling thread's checkpoint."""
        self._local.engine_call = engine_call

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._model, name)
        engine_call: _EngineCall | None = getattr(self._local, "engine_call", None)
        if name not in self._CALLS or engine_call is None:
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            with engine_call():
                return attribute(*args, **kwargs)

        return call


def _engine_call_of(cancel: threading.Event) -> _EngineCall:
    if isinstance(cancel, BatchControl):
        return cancel.engine_call

    @contextlib.contextmanager
    def check() -> Iterator[None]:
        if cancel.is_set():
            raise CancelledByClient
        yield

    return check


@dataclass(frozen=True, slots=True)
class _Window:
    """One encoder pass's output and what decoding it needs."""

    tokenizer: Any
    encoder_output: Any
    frames: int
    """Mel frames of real audio (the rest of the window is padding)."""
    language: str

    @property
    def duration(self) -> float:
        return self.frames * _SECONDS_PER_FRAME


@dataclass(slots=True)
class _Decoded:
    """A decoded segment (its ``id`` set when the result is assembled), with its times on
    the input's timeline: the engine's own, or a tail of a long-audio window decoded
    again (``recovered``)."""

    segment: Segment
    recovered: bool = False

    @classmethod
    def of(cls, seg: Any, start: float, end: float) -> _Decoded:
        """One of faster-whisper's segments, placed at ``start``-``end``."""
        return cls(
            Segment(
                id=0,
                seek=seg.seek,
                start=start,
                end=end,
                text=seg.text,
                tokens=tuple(seg.tokens),
                temperature=seg.temperature or 0.0,
                avg_logprob=seg.avg_logprob,
                compression_ratio=seg.compression_ratio,
                no_speech_prob=seg.no_speech_prob,
                words=tuple(
                    Word(word=w.word, start=w.start, end=w.end, probability=w.probability)
                    for w in (seg.words or ())
                ),
            )
        )

    @classmethod
    def of_tail(cls, result: SegmentDecode, plan: LongAudioPlan, tail: Tail) -> _Decoded | None:
        """A tail's decode: its words from the tail's start on (``None`` if none); the
        words of the context read before it (by their middle) were decoded already."""
        words = [w for w in result.words if tail.read_from + (w.start + w.end) / 2 >= tail.start]
        text = "".join(w.word for w in words).strip()
        if not text:
            return None
        segment = Segment(
            id=0,
            start=plan.to_source_time(tail.read_from + words[0].start),
            end=plan.to_source_time(tail.read_from + words[-1].end, is_end=True),
            text=" " + text,
            avg_logprob=math.log(max(result.confidence, 1e-6)),
            compression_ratio=_compression_ratio(text),
        )
        return cls(segment, recovered=True)


class FasterWhisperBackend:
    """Batch transcription and translation with faster-whisper."""

    engine_name = "faster-whisper"
    decodes_after_prefix = True
    """A forced prefix is read over the start of the audio and decoding goes on after it:
    realtime finals can be decoded behind the previous finals (see ``final_context``)."""

    def __init__(self) -> None:
        self._model: Any = None
        self._beam_size = 5
        self._vad_filter = False
        self._long_audio_batch = 1

    def load(self, model_dir: Path, config: EngineConfig) -> LoadedModelInfo:
        """Load a CTranslate2 Whisper model directory."""
        from faster_whisper import WhisperModel  # noqa: PLC0415 - lazy engine import

        device, compute_type = resolve_device(config.device, config.compute_type)
        long_audio_batch = resolve_long_audio_batch(device, getattr(config, "long_audio_batch", 0))
        lanes, threads = resolve_lanes(device, config.lanes, config.cpu_threads, available_cores())
        self._model = WhisperModel(
            str(model_dir),
            device=device,
            compute_type=compute_type,
            cpu_threads=threads,
            num_workers=lanes,
            local_files_only=True,
        )
        self._model.model = _Checkpointed(self._model.model)
        self._beam_size = config.beam_size
        self._vad_filter = config.vad_filter
        self._long_audio_batch = long_audio_batch
        return LoadedModelInfo(
            engine=self.engine_name,
            device=device,
            compute_type=compute_type,
            capabilities=self._capabilities(),
            lanes=lanes,
        )

    def _capabilities(self) -> STTCapabilities:
        """English-only models (``*.en``) hear English and cannot translate."""
        from faster_whisper.tokenizer import _LANGUAGE_CODES  # noqa: PLC0415 - lazy engine import

        multilingual = bool(self._model.model.is_multilingual)
        return STTCapabilities(
            streaming=True,
            native_partials=False,
            word_timestamps=True,
            translation=multilingual,
            languages=tuple(_LANGUAGE_CODES) if multilingual else ("en",),
        )

    def transcribe(
        self,
        audio: npt.NDArray[np.float32],
        params: TranscribeParams,
        cancel: threading.Event,
        on_segment: Callable[[Segment, str], None] | None = None,
    ) -> BatchResult:
        """Run the decoder; cancellation (and a :class:`BatchControl`'s turn) is checked
        before every engine call, and each segment is handed to ``on_segment`` as soon as
        it is decoded."""
        if self._model is None:
            raise RuntimeError("model not loaded")
        engine: _Checkpointed = self._model.model
        engine.checkpoint(_engine_call_of(cancel))
        try:
            return self._transcribe(audio, params, cancel, on_segment)
        finally:
            engine.checkpoint(None)

    def _transcribe(
        self,
        audio: npt.NDArray[np.float32],
        params: TranscribeParams,
        cancel: threading.Event,
        on_segment: Callable[[Segment, str], None] | None,
    ) -> BatchResult:
        options: dict[str, Any] = {
            "language": params.language or None,
            "task": params.task.value,
            "initial_prompt": build_prompt(params.prompt, params.hot_words),
            "temperature": params.temperature if params.temperature > 0 else 0.0,
            "beam_size": self._beam_size,
        }
        batched = self._batches(audio, params)
        plan = plan_long_audio(audio, find_speech(audio)) if batched else None
        if batched and plan is None:
            # No speech: the window-by-window decoder (no VAD there) would read words into
            # noise, as the pipeline's own VAD never let it.
            language = "en" if params.task is Task.TRANSLATE else (params.language or "en")
            return BatchResult(text="", language=language, duration=audio.size / _SAMPLE_RATE)
        if plan is not None:
            log.info(
                "long_audio_batched",
                audio_s=round(audio.size / _SAMPLE_RATE, 1),
                windows=len(plan.clips),
                batch_size=self._long_audio_batch,
            )
            timed: Iterable[_Decoded]
            timed, info = self._decode_windows(plan, options, params, cancel)
            duration = audio.size / _SAMPLE_RATE
        else:
            found, info = self._model.transcribe(
                audio,
                word_timestamps=params.word_timestamps,
                vad_filter=self._vad_filter,
                **options,
            )
            duration = info.duration
            # Whisper times a segment with the window's timestamp tokens, and the last one
            # can run past the audio into the window's padding ("He might even have been
            # made amiable himself." at 24.1-31.1 s of a 27.3 s file): clamped to the end.
            timed = (  # lazily
                _Decoded.of(seg, min(seg.start, duration), min(seg.end, duration)) for seg in found
            )
        language = "en" if params.task is Task.TRANSLATE else info.language
        segments: list[Segment] = []
        for index, item in enumerate(timed):
            if cancel.is_set():
                raise CancelledByClient
            segment = replace(item.segment, id=index)
            segments.append(segment)
            if on_segment is not None:
                on_segment(segment, language)
        text = "".join(s.text for s in segments).strip()
        return BatchResult(
            text=text, language=language, duration=duration, segments=tuple(segments)
        )

    def _decode_windows(
        self,
        plan: LongAudioPlan,
        options: dict[str, Any],
        params: TranscribeParams,
        cancel: threading.Event,
    ) -> tuple[list[_Decoded], Any]:
        """The segments of ``plan``'s windows, several windows per engine call, in order,
        each with its start and end on the input's timeline.

        Windows are decoded with timestamps: decoding one without them, Whisper left out
        whole trailing sentences (base lost 30 of 190 words on the Dickens and LibriVox
        readings joined), and where it still stops early, the segment times show it. The
        window's last segment and the speech after it are then decoded again on their own,
        as a streaming final is (an encoder window sized to them, not 30 s; tails of one
        size batched). Joined into one window, the tails of several windows were read
        across, out of order, by base.
        """
        from faster_whisper import BatchedInferencePipeline  # noqa: PLC0415 - lazy import

        found, info = BatchedInferencePipeline(self._model).transcribe(
            plan.audio,
            batch_size=self._long_audio_batch,
            clip_timestamps=list(plan.clips),
            without_timestamps=False,
            **options,
        )
        segments = []
        for segment in found:
            if cancel.is_set():
                raise CancelledByClient
            segments.append(segment)
        tails = plan.abandoned([(s.start, s.end) for s in segments])
        if tails:
            log.info("long_audio_recovering", tails=[(t.start, t.end) for t in tails])
        decoded = [
            _Decoded.of(s, plan.to_source_time(s.start), plan.to_source_time(s.end, is_end=True))
            for s in segments
            if not any(t.start <= s.start < t.end for t in tails)  # decoded again
        ]
        tail_options = SegmentOptions(
            language=info.language,  # the language the whole audio was found to be in
            prompt=params.prompt,
            hot_words=params.hot_words,
            final=True,
            translate=params.task is Task.TRANSLATE,
        )
        if cancel.is_set():
            raise CancelledByClient
        passes = [
            (
                plan.audio[round(tail.read_from * _SAMPLE_RATE) : round(tail.end * _SAMPLE_RATE)],
                tail_options,
            )
            for tail in tails
        ]
        # Tails of one encoder window's size share one encoder pass and one generation.
        for tail, result in zip(tails, self.decode_segments(passes), strict=True):
            if isinstance(result, Exception):
                raise result
            recovered = _Decoded.of_tail(result, plan, tail)
            if recovered is not None:
                decoded.append(recovered)
        decoded.sort(key=lambda item: item.segment.start)
        for before, item in itertools.pairwise(decoded):
            if item.recovered:
                text = without_repeated_opening(before.segment.text, item.segment.text)
                item.segment = replace(item.segment, text=text)
        return decoded, info

    def _batches(self, audio: npt.NDArray[np.float32], params: TranscribeParams) -> bool:
        """Whether ``audio`` is decoded several windows per engine call (faster-whisper's
        ``BatchedInferencePipeline``): audio longer than one window, whose caller reads
        only the text. Its speech is cut into windows of up to 30 s that end at long
        pauses (:mod:`theo.engines.stt.long_audio_plan`), each decoded without the previous
        one's text, so subtitles, ``verbose_json`` and word times keep the window-by-window
        decoder, its context and its sentence-long segments."""
        return (
            self._long_audio_batch > 1
            and params.coarse_segments
            and not params.word_timestamps
            and audio.size > _WINDOW_SAMPLES
        )

    def decode_segment(
        self, audio: npt.NDArray[np.float32], options: SegmentOptions
    ) -> SegmentDecode:
        """Decode a speech segment at temperature 0, without fallback, so passes stay bounded.

        Context arrives as ``options.prompt``, never by conditioning on earlier windows.
        """
        if self._model is None:
            raise RuntimeError("model not loaded")
        prompt = self._fit_prompt(options.prompt, options.hot_words)
        beam_size = options.beam_size or self._beam_size
        if audio.size > _WINDOW_SAMPLES:
            return self._decode_long(audio, options, prompt, beam_size)
        return self._decode_window(audio, options, prompt, beam_size)

    def _decode_window(
        self,
        audio: npt.NDArray[np.float32],
        options: SegmentOptions,
        prompt: str | None,
        beam_size: int,
    ) -> SegmentDecode:
        """Decode audio that fits one Whisper window with a single encoder pass.

        ``WhisperModel.transcribe`` would decode the tail after the last word once more:
        a second encoder pass, where Whisper also likes to invent "Thank you." endings.
        """
        from faster_whisper.audio import pad_or_trim  # noqa: PLC0415 - lazy engine import

        model = self._model
        features = model.feature_extractor(audio)
        frames = features.shape[-1] - 1
        encoder_output = model.encode(pad_or_trim(features, _encoder_frames(frames, options.final)))
        language = options.language or "en"
        if options.language is None and model.model.is_multilingual:
            language = model.model.detect_language(encoder_output)[0][0][0][2:-2]
        tokenizer = self._tokenizer(language, "translate" if options.translate else "transcribe")
        window = _Window(tokenizer, encoder_output, frames, language)
        request, cap = self._request(window, prompt, options)
        result = self._generate(window, [request], [cap], beam_size)[0]
        return self._decoded(window, request, cap, beam_size, result)

    def decode_segments(
        self, passes: Sequence[tuple[npt.NDArray[np.float32], SegmentOptions]]
    ) -> list[SegmentDecode | Exception]:
        """Decode several passes (streams' partial passes, or a long upload's tails),
        batching those that can share a call.

        Passes with the same encoder window, beam, prompt and known language share one encoder
        pass and one generation (on the CPU: the alignment needs each pass's encoder
        output apart); the rest, and any pass whose batched decode looped, are decoded
        alone, as :meth:`decode_segment` would. Greedy decodes come out the same either
        way. A final pass's beam and encoder window differ from a partial pass's, so
        finals are batched with finals only.
        """
        results: list[SegmentDecode | Exception | None] = [None] * len(passes)
        groups: dict[tuple[int, int, str, str | None], list[int]] = {}
        for index, (audio, options) in enumerate(passes):
            key = self._batch_key(audio, options)
            if key is not None:
                groups.setdefault(key, []).append(index)
        for (encoder_frames, beam_size, language, _), indices in groups.items():
            if len(indices) < 2:
                continue
            try:
                decodes = self._decode_batch(
                    [passes[i] for i in indices], encoder_frames, beam_size, language
                )
            except Exception:
                # Decoded alone below, where errors are theirs; logged, since batching a
                # group the key allowed should not fail.
                log.warning("pass_batch_failed", passes=len(indices), exc_info=True)
                continue
            for index, decode in zip(indices, decodes, strict=True):
                results[index] = decode
        for index, (audio, options) in enumerate(passes):
            if results[index] is None:
                try:
                    results[index] = self.decode_segment(audio, options)
                except Exception as exc:  # returned to the pass's stream
                    results[index] = exc
        return [r for r in results if r is not None]

    def _batch_key(
        self, audio: npt.NDArray[np.float32], options: SegmentOptions
    ) -> tuple[int, int, str, str | None] | None:
        """What a pass must share with others to be decoded in one batch (None: alone):
        encoder window, beam, language and prompt (CTranslate2 wants the start token at
        one position in a batch; a prefix comes after it and may differ)."""
        engine = self._model.model
        language = options.language or (None if engine.is_multilingual else "en")
        if options.translate or audio.size > _WINDOW_SAMPLES or language is None:
            return None
        if engine.device != "cpu":
            return None  # the per-pass encoder output is copied through numpy
        frames = audio.size // self._model.feature_extractor.hop_length
        beam_size = options.beam_size or self._beam_size
        prompt = self._fit_prompt(options.prompt, options.hot_words)
        return _encoder_frames(frames, options.final), beam_size, language, prompt

    def _decode_batch(
        self,
        passes: Sequence[tuple[npt.NDArray[np.float32], SegmentOptions]],
        encoder_frames: int,
        beam_size: int,
        language: str,
    ) -> list[SegmentDecode]:
        import ctranslate2  # noqa: PLC0415 - lazy engine import
        from faster_whisper.audio import pad_or_trim  # noqa: PLC0415 - lazy engine import

        model = self._model
        features = [model.feature_extractor(audio) for audio, _ in passes]
        batch_output = model.encode(np.stack([pad_or_trim(f, encoder_frames) for f in features]))
        tokenizer = self._tokenizer(language)
        outputs = np.asarray(batch_output)
        windows = [
            _Window(
                tokenizer,
                ctranslate2.StorageView.from_array(np.ascontiguousarray(outputs[i : i + 1])),
                f.shape[-1] - 1,
                language,
            )
            for i, f in enumerate(features)
        ]
        requests = [
            self._request(window, self._fit_prompt(options.prompt, options.hot_words), options)
            for window, (_, options) in zip(windows, passes, strict=True)
        ]
        batch = _Window(tokenizer, batch_output, 0, language)
        results = self._generate(
            batch, [r for r, _ in requests], [cap for _, cap in requests], beam_size
        )
        return [
            self._decoded(window, request, cap, beam_size, result)
            for window, (request, cap), result in zip(windows, requests, results, strict=True)
        ]

    def _tokenizer(self, language: str, task: str = "transcribe") -> Any:
        from faster_whisper.tokenizer import Tokenizer  # noqa: PLC0415 - lazy engine import

        model = self._model
        return Tokenizer(model.hf_tokenizer, model.model.is_multilingual, task, language)

    def _request(
        self, window: _Window, prompt: str | None, options: SegmentOptions
    ) -> tuple[list[int], int]:
        """The decoder's prompt tokens for a pass, and its cap on new tokens."""
        tokenizer = window.tokenizer
        previous = tokenizer.encode(" " + prompt) if prompt else []
        request: list[int] = self._model.get_prompt(
            tokenizer, previous, without_timestamps=True, prefix=options.prefix
        )
        return request, math.ceil(window.duration * _MAX_TOKENS_PER_S) + 8

    def _generate(
        self,
        window: _Window,
        requests: list[list[int]],
        caps: list[int],
        beam_size: int,
        **extra: Any,
    ) -> list[Any]:
        from faster_whisper.transcribe import (  # noqa: PLC0415 - lazy engine import
            get_suppressed_tokens,
        )

        model = self._model
        longest = max(len(request) + cap for request, cap in zip(requests, caps, strict=True))
        results: list[Any] = model.model.generate(
            window.encoder_output,
            requests,
            max_length=min(model.max_length, longest),
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=get_suppressed_tokens(window.tokenizer, [-1]),
            beam_size=beam_size,
            **extra,
        )
        return results

    def _decoded(
        self, window: _Window, request: list[int], cap: int, beam_size: int, result: Any
    ) -> SegmentDecode:
        """One pass's generation made a transcript: a loop decoded again, silence dropped,
        words aligned to the audio."""
        tokenizer, duration = window.tokenizer, window.duration
        tokens = [t for t in result.sequences_ids[0] if t < tokenizer.eot]
        # The result starts with the prefix's tokens: the request's tail after no_timestamps.
        prefix_size = len(request) - request.index(tokenizer.no_timestamps) - 1
        if _looped(tokens[prefix_size:], cap, tokenizer.decode(tokens)):
            retry_beam = max(beam_size, self._beam_size)
            no_repeat = _LOOP_NO_REPEAT_NGRAM if retry_beam == beam_size else 0
            result = self._generate(
                window, [request], [cap], retry_beam, no_repeat_ngram_size=no_repeat
            )[0]
            tokens = [t for t in result.sequences_ids[0] if t < tokenizer.eot]
        avg_logprob = result.scores[0] * len(tokens) / (len(tokens) + 1)
        if not tokens or (result.no_speech_prob > 0.6 and avg_logprob < -1.0):
            return SegmentDecode(text="", words=(), language=window.language, confidence=0.0)
        segment: dict[str, Any] = {"seek": 0, "start": 0.0, "end": duration, "tokens": tokens}
        try:
            self._model.add_word_timestamps(
                [[segment]], tokenizer, window.encoder_output, window.frames, _PREPEND, _APPEND, 0.0
            )
            words = tuple(
                Word(w["word"], float(w["start"]), float(w["end"]), float(w["probability"]))
                for w in segment["words"]
            )
        except IndexError:
            # faster-whisper's DTW alignment fails on some degenerate decodes (a token run
            # with no attention jump); the words then share the segment's time evenly.
            words = _evenly_timed(tokenizer, tokens, duration, math.exp(avg_logprob))
        text = tokenizer.decode(tokens).strip()
        return SegmentDecode(text, words, window.language, _confidence(words, [avg_logprob]))

    def _decode_long(
        self,
        audio: npt.NDArray[np.float32],
        options: SegmentOptions,
        prompt: str | None,
        beam_size: int,
    ) -> SegmentDecode:
        """Decode audio longer than one window (a segment streamed without partials)."""
        segments_iter, info = self._model.transcribe(
            audio,
            language=options.language,
            initial_prompt=prompt,
            prefix=options.prefix,
            beam_size=beam_size,
            temperature=0.0,
            condition_on_previous_text=False,
            word_timestamps=True,
            hallucination_silence_threshold=_HALLUCINATION_SILENCE_S,
        )
        segments = list(segments_iter)
        words = tuple(
            Word(w.word, float(w.start), float(w.end), float(w.probability))
            for seg in segments
            for w in (seg.words or ())
        )
        text = "".join(s.text for s in segments).strip()
        confidence = _confidence(words, [s.avg_logprob for s in segments])
        return SegmentDecode(text, words, info.language, confidence)

    def tail_tokens(self, text: str, max_tokens: int) -> str:
        """Keep the last ``max_tokens`` tokens of ``text``, starting on a word boundary."""
        if self._model is None:
            raise RuntimeError("model not loaded")
        text = text.strip()
        if max_tokens <= 0 or not text:
            return ""
        tokenizer = self._model.hf_tokenizer
        ids: list[int] = tokenizer.encode(" " + text, add_special_tokens=False).ids
        if len(ids) <= max_tokens:
            return text
        kept = ids[-max_tokens:]
        tail: str = tokenizer.decode(kept)
        if not tokenizer.id_to_token(kept[0]).startswith("\u0120"):
            # The cut fell inside a word: drop its fragment.
            tail = tail.partition(" ")[2]
        return tail.strip()

    def _fit_prompt(self, prompt: str | None, hot_words: tuple[str, ...]) -> str | None:
        """Merge hot words and context so both fit Whisper's prompt window, hot words first."""
        hot = build_prompt(None, hot_words)
        budget = _MAX_PROMPT_TOKENS
        if hot:
            budget -= len(self._model.hf_tokenizer.encode(" " + hot, add_special_tokens=False).ids)
        context = self.tail_tokens(prompt, budget) if prompt else None
        return build_prompt(context or None, hot_words)
