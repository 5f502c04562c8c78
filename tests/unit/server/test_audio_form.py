from __future__ import annotations

import io

import pytest
from starlette.datastructures import FormData, Headers, UploadFile

from theo.errors import FileTooLargeError, InvalidRequestError
from theo.server.audio_form import parse_audio_form
from theo.types import ResponseFormat, Task


def _upload(data: bytes = b"RIFF") -> UploadFile:
    return UploadFile(io.BytesIO(data), size=len(data), filename="a.wav", headers=Headers())


def _form(*items: tuple[str, object]) -> FormData:
    return FormData([(k, v) for k, v in items])  # type: ignore[misc]


def test_defaults() -> None:
    form = parse_audio_form(_form(("file", _upload()), ("model", "m")), Task.TRANSCRIBE, 100)
    assert form.model == "m"
    assert form.response_format == ResponseFormat.JSON
    assert form.params.language is None and form.params.temperature == 0.0
    assert not form.include_words


def test_all_fields() -> None:
    form = parse_audio_form(
        _form(
            ("file", _upload()),
            ("model", " m "),
            ("language", "pt-BR"),
            ("prompt", "PIX"),
            ("temperature", "0.2"),
            ("response_format", "verbose_json"),
            ("timestamp_granularities[]", "word"),
            ("timestamp_granularities[]", "segment"),
        ),
        Task.TRANSLATE,
        100,
    )
    assert form.model == "m"
    assert form.params.language == "pt"
    assert form.params.prompt == "PIX"
    assert form.params.temperature == pytest.approx(0.2)
    assert form.params.word_timestamps and form.include_words
    assert form.params.task == Task.TRANSLATE


@pytest.mark.parametrize(
    ("items", "param"),
    [
        ((("model", "m"),), "file"),
        ((("file", "text"), ("model", "m")), "file"),
        ((("file", _upload(b"")), ("model", "m")), "file"),
        ((("file", _upload()),), "model"),
        ((("file", _upload()), ("model", "m"), ("temperature", "nan")), "temperature"),
        ((("file", _upload()), ("model", "m"), ("temperature", "-0.1")), "temperature"),
        ((("file", _upload()), ("model", "m"), ("language", "english!")), "language"),
        ((("file", _upload()), ("model", "m"), ("response_format", "xml")), "response_format"),
        (
            (("file", _upload()), ("model", "m"), ("timestamp_granularities[]", "word")),
            "timestamp_granularities",
        ),
    ],
)
def test_invalid_fields_are_named(items: tuple[tuple[str, object], ...], param: str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        parse_audio_form(_form(*items), Task.TRANSCRIBE, 100)
    assert info.value.param == param


def test_too_large() -> None:
    with pytest.raises(FileTooLargeError):
        parse_audio_form(_form(("file", _upload(b"x" * 101)), ("model", "m")), Task.TRANSCRIBE, 100)


@pytest.mark.parametrize(
    ("field", "value", "param"),
    [
        ("hotwords", "PIX", "hotwords"),
        ("include[]", "logprobs", "include[]"),
        ("chunking_strategy", "server_vad", "chunking_strategy"),
    ],
)
def test_unknown_or_unsupported_fields_are_refused(field: str, value: str, param: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        parse_audio_form(
            _form(("file", _upload()), ("model", "m"), (field, value)), Task.TRANSCRIBE, 100
        )
    assert caught.value.param == param
    assert param in caught.value.message


def test_stream_true_is_a_transcription_in_json_or_text() -> None:
    form = parse_audio_form(
        _form(("file", _upload()), ("model", "m"), ("stream", "true")), Task.TRANSCRIBE, 100
    )
    assert form.stream
    with pytest.raises(InvalidRequestError) as caught:
        parse_audio_form(
            _form(("file", _upload()), ("model", "m"), ("stream", "true")), Task.TRANSLATE, 100
        )
    assert caught.value.param == "stream"
    with pytest.raises(InvalidRequestError) as caught:
        parse_audio_form(
            _form(
                ("file", _upload()), ("model", "m"), ("stream", "true"), ("response_format", "srt")
            ),
            Task.TRANSCRIBE,
            100,
        )
    assert caught.value.param == "response_format"


def test_openai_defaults_for_stream_and_chunking_are_accepted() -> None:
    form = parse_audio_form(
        _form(
            ("file", _upload()), ("model", "m"), ("stream", "false"), ("chunking_strategy", "auto")
        ),
        Task.TRANSCRIBE,
        100,
    )
    assert form.model == "m"


@pytest.mark.parametrize(
    ("items", "coarse"),
    [
        ((), True),  # json: only the text is read
        ((("response_format", "text"),), True),
        ((("response_format", "verbose_json"),), False),
        ((("response_format", "srt"),), False),
        ((("response_format", "vtt"),), False),
        ((("stream", "true"),), False),  # text deltas come segment by segment
    ],
)
def test_only_text_responses_let_long_audio_be_decoded_in_coarse_segments(
    items: tuple[tuple[str, str], ...], coarse: bool
) -> None:
    form = parse_audio_form(
        _form(("file", _upload()), ("model", "m"), *items), Task.TRANSCRIBE, 100
    )
    assert form.params.coarse_segments is coarse
