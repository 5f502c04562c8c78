"""Voice, language and speed of a speech request, checked against what the engine declares."""

from __future__ import annotations

import pytest

from theo.engines.tts.backend import EngineInfo, SynthesisOptions, VoiceInfo
from theo.engines.tts.kokoro_backend import voice_info
from theo.engines.tts.options import UnsupportedParameterError, resolve_options

KOKORO = EngineInfo(
    engine="kokoro",
    device="cpu",
    sample_rate=24_000,
    voices=(voice_info("jm_kumo"), voice_info("pf_dora"), voice_info("af_heart")),
    default_voice="jm_kumo",
    languages=("en-us", "en-gb", "pt-br", "es"),
    default_language="en-us",
    min_speed=0.5,
    max_speed=2.0,
)
PIPER = EngineInfo(
    engine="piper",
    device="cpu",
    sample_rate=22_050,
    voices=(VoiceInfo("joe", "Joe", "en-us", "male"),),
    default_voice="joe",
    languages=("en-us",),
    default_language="en-us",
)


def test_kokoro_voice_ids_carry_language_and_gender() -> None:
    assert voice_info("jm_kumo") == VoiceInfo("jm_kumo", "Kumo", "ja", "male")
    assert voice_info("pf_dora") == VoiceInfo("pf_dora", "Dora", "pt-br", "female")
    assert voice_info("custom") == VoiceInfo("custom", "Custom", "", "")


def test_defaults_fill_empty_fields() -> None:
    assert resolve_options(PIPER, voice="", language="", speed=0) == SynthesisOptions(
        voice="joe", language="en-us", speed=1.0
    )


@pytest.mark.parametrize(
    ("voice", "language", "expected"),
    [
        ("pf_dora", "", "pt-br"),  # the voice's own language
        ("jm_kumo", "", "en-us"),  # Japanese cannot be phonemized: the engine's default
        ("jm_kumo", "pt-BR", "pt-br"),
        ("jm_kumo", "pt_br", "pt-br"),
        ("jm_kumo", "pt", "pt-br"),  # a base code picks the first matching variant
        ("af_heart", "en", "en-us"),
    ],
)
def test_languages_are_normalized_and_matched(voice: str, language: str, expected: str) -> None:
    options = resolve_options(KOKORO, voice=voice, language=language, speed=1.0)
    assert options.language == expected


@pytest.mark.parametrize(
    ("info", "fields", "param", "message"),
    [
        (PIPER, {"voice": "alloy"}, "voice", "Unknown voice 'alloy' for this model. Voices: joe."),
        (PIPER, {"language": "pt-br"}, "language", "Supported: en-us."),
        (KOKORO, {"language": "de"}, "language", "Language 'de' is not supported"),
        (KOKORO, {"speed": 3.0}, "speed", "supports speed from 0.5 to 2; got 3."),
        (KOKORO, {"speed": 0.25}, "speed", "supports speed from 0.5 to 2"),
    ],
)
def test_unsupported_options_name_the_field(
    info: EngineInfo, fields: dict[str, object], param: str, message: str
) -> None:
    request: dict[str, object] = {"voice": "", "language": "", "speed": 1.0, **fields}
    with pytest.raises(UnsupportedParameterError) as raised:
        resolve_options(info, **request)  # type: ignore[arg-type]
    assert raised.value.param == param
    assert message in raised.value.message


def test_piper_accepts_the_whole_openai_speed_range() -> None:
    for speed in (0.25, 4.0):
        assert resolve_options(PIPER, voice="joe", language="", speed=speed).speed == speed
