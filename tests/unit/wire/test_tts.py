"""Text-to-speech messages survive the trip to the worker and back unchanged."""

from __future__ import annotations

from theo.types import SpeechChunk, SpeechRequest, Voice, VoiceCatalog
from theo.wire.tts import (
    catalog_from_proto,
    catalog_to_proto,
    chunk_from_proto,
    chunk_to_proto,
    speech_from_proto,
    speech_to_proto,
)


def test_a_speech_request_round_trips_to_the_workers_model() -> None:
    request = SpeechRequest(
        model="kokoro-v1",
        text="Olá, tudo bem?",
        voice="pf_dora",
        language="pt-br",
        speed=1.25,
        request_id="req-1",
    )
    assert speech_from_proto(speech_to_proto(request), "kokoro-v1") == request


def test_defaults_stay_unset_on_the_wire() -> None:
    request = speech_from_proto(speech_to_proto(SpeechRequest("m", "Hi.", speed=0.0)), "m")
    assert (request.voice, request.language, request.speed) == ("", "", 0.0)


def test_an_audio_chunk_round_trips() -> None:
    chunk = SpeechChunk(b"\x00\x01" * 100, 22_050, 1, 3, "A second one follows.")
    back = chunk_from_proto(chunk_to_proto(chunk))
    assert back == chunk
    assert back.duration_s == 100 / 22_050


def test_a_voice_catalog_round_trips_with_float32_speeds() -> None:
    catalog = VoiceCatalog(
        model="kokoro-v1",
        voices=(Voice("af_heart", "Heart", "en-us", "female"), Voice("joe", "Joe", "en-us")),
        default_voice="af_heart",
        languages=("en-us", "pt-br"),
        sample_rate=24_000,
        min_speed=0.3,  # not exact in float32: the wire gives back 0.30000001...
        max_speed=2.0,
    )
    assert catalog_from_proto(catalog_to_proto(catalog), "kokoro-v1") == catalog
