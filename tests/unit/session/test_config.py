"""SessionConfig validation (strict types, limits, model capabilities) and worker rejections.

The second half drives the real :class:`WorkerLink` over a scripted gRPC call (the fakes of
``test_worker_link``) whose worker refuses a setting with INVALID_ARGUMENT and the
``theo-param`` trailer, as the STT servicer does for a language the engine cannot decode.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import grpc
import numpy as np
import pytest

from tests.unit.session.test_worker_link import FakeCall, FakeScheduler, Recorder
from theo.audio import g711
from theo.errors import CapabilityError, InvalidRequestError
from theo.manifest import Capabilities, ModelManifest
from theo.postprocessing.limits import MAX_HOT_WORD_LENGTH, MAX_HOT_WORDS
from theo.server.audio_form import _MAX_HOT_WORD_LENGTH, _MAX_HOT_WORDS
from theo.session.audio_format import AudioEncoding, InputFormat
from theo.session.config import (
    MAX_CLOSING_TIMEOUT_MS,
    MAX_HOLD_TIMEOUT_MS,
    MAX_INIT_TIMEOUT_MS,
    MAX_SILENCE_TIMEOUT_MS,
    SessionConfig,
    check_supported,
)
from theo.session.ring_buffer import RingBuffer
from theo.session.worker_link import Correction, LinkCallbacks, WorkerLink
from theo.types import ModelType, StreamAudio
from theo.wire.proto import stt_worker_pb2 as pb


def _param_of(changes: dict[str, Any]) -> str | None:
    with pytest.raises(InvalidRequestError) as info:
        SessionConfig().updated(changes)
    return info.value.param


# ---------------------------------------------------------------- strict types


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("input_sample_rate", "16000"),
        ("input_sample_rate", 16000.0),
        ("input_sample_rate", True),
        ("init_timeout_ms", "5000"),
        ("enable_partial_transcripts", "yes"),
        ("enable_itn", 1),
        ("enable_itn", "true"),
        ("language", 5),
        ("vad_sensitivity", 1),
        ("hot_words", 7),
    ],
)
def test_values_of_the_wrong_type_are_refused_not_converted(field: str, value: Any) -> None:
    assert _param_of({field: value}) == field


def test_nested_preprocessing_switches_are_strict_and_named() -> None:
    assert _param_of({"preprocessing": {"dc_remove": "yes"}}) == "preprocessing.dc_remove"
    assert _param_of({"preprocessing": {"denoise": True}}) == "preprocessing.denoise"
    assert _param_of({"preprocessing": {"volume": 3}}) == "preprocessing.volume"
    updated = SessionConfig().updated({"preprocessing": {"dc_remove": False, "denoise": "on"}})
    assert updated.preprocessing.dc_remove is False and updated.preprocessing.denoise == "on"


def test_well_typed_values_and_the_documented_conveniences_still_work() -> None:
    updated = SessionConfig().updated(
        {
            "input_sample_rate": 8000,
            "enable_itn": False,
            "hot_words": "PIX, TED , ,Selic",
            "language": "pt_BR",
            "init_timeout_ms": 1000,
        }
    )
    assert updated.input_sample_rate == 8000 and updated.enable_itn is False
    assert updated.hot_words == ["PIX", "TED", "Selic"]
    assert updated.language == "pt"
    assert updated.updated({"language": None}).language is None
    assert updated.updated({"language": ""}).language is None
    # The message names the field and says what is wrong.
    with pytest.raises(InvalidRequestError, match=r"'input_sample_rate'.*integer"):
        updated.updated({"input_sample_rate": "16000"})


def test_an_unknown_field_is_named() -> None:
    assert _param_of({"volume": 11}) == "volume"


# ---------------------------------------------------------------- limits


def test_hot_word_limits_are_the_batch_limits() -> None:
    assert (MAX_HOT_WORDS, MAX_HOT_WORD_LENGTH) == (100, 64)
    assert (_MAX_HOT_WORDS, _MAX_HOT_WORD_LENGTH) == (MAX_HOT_WORDS, MAX_HOT_WORD_LENGTH)


def test_hot_words_are_limited_in_number_and_length() -> None:
    hundred = [f"word{i}" for i in range(MAX_HOT_WORDS)]
    assert SessionConfig().updated({"hot_words": hundred}).hot_words == hundred
    assert SessionConfig().updated({"hot_words": ["x" * MAX_HOT_WORD_LENGTH]}).hot_words
    assert _param_of({"hot_words": [*hundred, "one_more"]}) == "hot_words"
    assert _param_of({"hot_words": ["x" * (MAX_HOT_WORD_LENGTH + 1)]}) == "hot_words"
    assert _param_of({"hot_words": ",".join([*hundred, "one_more"])}) == "hot_words"
    # Repeats are dropped before counting, as batch does.
    repeated = SessionConfig().updated({"hot_words": ["PIX"] * (MAX_HOT_WORDS + 5)})
    assert repeated.hot_words == ["PIX"]


@pytest.mark.parametrize(
    ("field", "maximum"),
    [
        ("init_timeout_ms", MAX_INIT_TIMEOUT_MS),
        ("silence_timeout_ms", MAX_SILENCE_TIMEOUT_MS),
        ("hold_timeout_ms", MAX_HOLD_TIMEOUT_MS),
        ("closing_timeout_ms", MAX_CLOSING_TIMEOUT_MS),
    ],
)
def test_lifecycle_timeouts_have_a_maximum(field: str, maximum: int) -> None:
    assert getattr(SessionConfig().updated({field: maximum}), field) == maximum
    assert _param_of({field: maximum + 1}) == field
    assert _param_of({field: 24 * 3_600_000}) == field
    assert _param_of({field: 999}) == field


def test_the_timeout_maximums_are_the_documented_ones() -> None:
    assert MAX_INIT_TIMEOUT_MS == 600_000
    assert MAX_SILENCE_TIMEOUT_MS == MAX_HOLD_TIMEOUT_MS == 3_600_000
    assert MAX_CLOSING_TIMEOUT_MS == 60_000


# ---------------------------------------------------------------- model capabilities


def _manifest(languages: list[str]) -> ModelManifest:
    return ModelManifest(
        name="m",
        type=ModelType.STT,
        engine="faster-whisper",
        capabilities=Capabilities(languages=languages),
    )


def test_a_language_outside_the_manifest_is_a_capability_error() -> None:
    english_only = _manifest(["en"])
    for language in ("pt", "zz"):
        with pytest.raises(CapabilityError) as info:
            check_supported(SessionConfig(language=language), english_only)
        assert info.value.param == "language"
        assert "supports only: en" in info.value.message
    check_supported(SessionConfig(language="en"), english_only)
    check_supported(SessionConfig(), english_only)  # detection is not a language


def test_a_manifest_without_languages_accepts_any_valid_code() -> None:
    check_supported(SessionConfig(language="zz"), _manifest([]))


# ---------------------------------------------------------------- worker rejections


class RefusingCall(FakeCall):
    """A worker that ends the stream with INVALID_ARGUMENT on a frame in ``language``."""

    def __init__(self, language: str) -> None:
        super().__init__()
        self.refused_language = language

    async def write(self, frame: pb.AudioFrame) -> None:
        if self.dead:
            raise grpc.aio.AioRpcError(
                grpc.StatusCode.INVALID_ARGUMENT, grpc.aio.Metadata(), grpc.aio.Metadata(), "gone"
            )
        if frame.language == self.refused_language:
            self.dead = True
            self._events.put_nowait(
                grpc.aio.AioRpcError(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    grpc.aio.Metadata(),
                    grpc.aio.Metadata(("theo-param", "language")),
                    f"Unsupported language '{frame.language}'.",
                )
            )
            return
        await super().write(frame)


class RejectionRecorder(Recorder):
    def __init__(self, correction: Correction | None) -> None:
        super().__init__()
        self.correction = correction
        self.rejected: list[InvalidRequestError] = []

    def callbacks(self) -> LinkCallbacks:
        async def rejected(error: InvalidRequestError) -> Correction | None:
            self.rejected.append(error)
            self.changed.set()
            return self.correction

        return dataclasses.replace(super().callbacks(), rejected=rejected)


def _speech(segment: int, size: int, language: str | None, *, is_last: bool = False) -> StreamAudio:
    return StreamAudio(
        segment_id=segment,
        audio_pcm16=b"\x01\x02" * (size // 2),
        is_last=is_last,
        language=language,
    )


async def _reopened(link: WorkerLink) -> None:
    """Wait (at most 5 s) until the link carries the session on a new stream."""
    async with asyncio.timeout(5):
        # The link announces no event for this; polled, under a deadline.
        while link.recovering:  # noqa: ASYNC110
            await asyncio.sleep(0.01)


async def test_a_refused_setting_is_corrected_and_the_speech_sent_again() -> None:
    refusing, fresh = RefusingCall("zz"), FakeCall()
    scheduler = FakeScheduler(refusing, fresh)
    recorder = RejectionRecorder(lambda options: dataclasses.replace(options, language=None))
    link = WorkerLink(
        "s", "m", scheduler, RingBuffer(64_000), recorder.callbacks(), recovery_timeout_s=5
    )
    link.start()
    await link.send(_speech(1, 1000, "zz"))
    await recorder.until(lambda: recorder.rejected)
    await _reopened(link)
    assert recorder.rejected[0].param == "language"
    await link.send(_speech(1, 500, None, is_last=True))
    await recorder.wait_finals(1)
    # Nothing lost: the refused audio reached the new stream, with the corrected setting.
    assert recorder.finals() == ["1:1500"]
    assert {f.language for f in fresh.frames} == {""}
    assert not recorder.failed and not recorder.interrupted
    await link.close()


async def test_speech_no_correction_can_save_is_given_up_with_an_empty_final() -> None:
    refusing, fresh = RefusingCall("zz"), FakeCall()
    scheduler = FakeScheduler(refusing, fresh)
    recorder = RejectionRecorder(None)
    ring = RingBuffer(64_000)
    link = WorkerLink("s", "m", scheduler, ring, recorder.callbacks(), recovery_timeout_s=5)
    link.start()
    await link.send(_speech(1, 1000, "zz"))
    await recorder.wait_finals(1)
    assert recorder.finals() == [""] and recorder.transcripts[0].segment_id == 1
    await _reopened(link)
    await link.send(_speech(1, 400, None, is_last=True))  # the rest of segment 1: dropped
    await link.send(_speech(2, 600, None, is_last=True))
    await recorder.wait_finals(2)
    assert recorder.finals() == ["", "2:600"]
    assert fresh.received == {2: 600}
    assert ring.uncommitted == 0 and not recorder.failed
    await link.close()


def test_g711_input_sets_8khz_unless_the_same_update_sets_a_rate() -> None:
    config = SessionConfig().updated({"input_audio_format": "g711_ulaw"})
    assert (config.input_audio_format, config.input_sample_rate) == ("g711_ulaw", 8_000)
    with pytest.raises(InvalidRequestError) as caught:
        SessionConfig().updated({"input_audio_format": "g711_alaw", "input_sample_rate": 16_000})
    assert caught.value.param == "input_sample_rate"
    assert "8000" in caught.value.message
    with pytest.raises(InvalidRequestError) as caught:
        config.updated({"input_sample_rate": 16_000})  # still G.711
    assert caught.value.param == "input_sample_rate"
    back = config.updated({"input_audio_format": "pcm16", "input_sample_rate": 16_000})
    assert (back.input_audio_format, back.input_sample_rate) == ("pcm16", 16_000)
    with pytest.raises(InvalidRequestError) as caught:
        SessionConfig().updated({"input_audio_format": "opus"})
    assert caught.value.param == "input_audio_format"


@pytest.mark.parametrize(
    ("encoding", "encode"),
    [("g711_ulaw", "pcm16_to_ulaw"), ("g711_alaw", "pcm16_to_alaw")],
)
def test_g711_frames_decode_to_the_samples_they_encode(encoding: str, encode: str) -> None:
    tone = (8_000 * np.sin(np.arange(160) / 5)).astype(np.int16)
    frame = getattr(g711, encode)(tone)
    audio_format = InputFormat(AudioEncoding(encoding), 8_000)
    assert audio_format.bytes_per_sample == 1
    assert audio_format.duration_s(frame) == pytest.approx(0.02)
    audio_format.check(frame[:-1])  # any byte count is whole samples
    decoded = audio_format.decode(frame)
    assert decoded.dtype == np.float32
    # G.711 keeps about 13 bits: within 2% of full scale of the original.
    assert np.max(np.abs(decoded - tone / 32768.0)) < 0.02
