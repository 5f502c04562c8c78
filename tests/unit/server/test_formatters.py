from __future__ import annotations

from theo.server.formatters import render, to_srt, to_verbose_json, to_vtt
from theo.types import BatchResult, ResponseFormat, Segment, Task, Word

RESULT = BatchResult(
    text="Hello there. General Kenobi.",
    language="en",
    duration=3661.5,
    segments=(
        Segment(
            id=0, start=0.0, end=1.2345, text=" Hello there.", words=(Word(" Hello", 0.0, 0.5),)
        ),
        Segment(id=1, start=59.9996, end=3661.5, text=" General Kenobi."),
        Segment(id=2, start=3661.5, end=3661.5, text="  "),
    ),
)


def test_srt_bytes() -> None:
    assert to_srt(RESULT) == (
        "1\n00:00:00,000 --> 00:00:01,234\nHello there.\n\n"
        "2\n00:01:00,000 --> 01:01:01,500\nGeneral Kenobi.\n"
    )


def test_vtt_bytes() -> None:
    assert to_vtt(RESULT) == (
        "WEBVTT\n\n"
        "00:00:00.000 --> 00:00:01.234\nHello there.\n\n"
        "00:01:00.000 --> 01:01:01.500\nGeneral Kenobi.\n"
    )


def test_verbose_json_words_only_when_asked() -> None:
    without = to_verbose_json(RESULT, Task.TRANSCRIBE, include_words=False)
    with_words = to_verbose_json(RESULT, Task.TRANSLATE, include_words=True)
    assert "words" not in without
    assert with_words["words"] == [{"word": "Hello", "start": 0.0, "end": 0.5}]
    assert with_words["task"] == "translate"
    assert [s["id"] for s in without["segments"]] == [0, 1, 2]


def test_render_media_types() -> None:
    assert render(RESULT, ResponseFormat.JSON, Task.TRANSCRIBE, False) == (
        {"text": RESULT.text},
        "application/json",
    )
    body, media = render(RESULT, ResponseFormat.TEXT, Task.TRANSCRIBE, False)
    assert body == RESULT.text + "\n" and media.startswith("text/plain")
    assert render(RESULT, ResponseFormat.VTT, Task.TRANSCRIBE, False)[1].startswith("text/vtt")
    assert "subrip" in render(RESULT, ResponseFormat.SRT, Task.TRANSCRIBE, False)[1]
