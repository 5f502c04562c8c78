"""Response bodies for each OpenAI ``response_format``."""

from __future__ import annotations

from typing import Any

from theo.types import BatchResult, ResponseFormat, Segment, Task


def _timestamp(seconds: float, decimal: str) -> str:
    total_ms = max(0, round(seconds * 1000))
    hours, rest = divmod(total_ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{decimal}{millis:03d}"


def _cues(result: BatchResult) -> list[Segment]:
    return [s for s in result.segments if s.text.strip()]


def to_srt(result: BatchResult) -> str:
    """SubRip subtitles, one cue per segment, numbered from 1."""
    blocks = [
        f"{index}\n{_timestamp(s.start, ',')} --> {_timestamp(s.end, ',')}\n{s.text.strip()}\n"
        for index, s in enumerate(_cues(result), start=1)
    ]
    return "\n".join(blocks)


def to_vtt(result: BatchResult) -> str:
    """WebVTT subtitles, one cue per segment."""
    blocks = [
        f"{_timestamp(s.start, '.')} --> {_timestamp(s.end, '.')}\n{s.text.strip()}\n"
        for s in _cues(result)
    ]
    return "WEBVTT\n\n" + "\n".join(blocks)


def to_verbose_json(result: BatchResult, task: Task, include_words: bool) -> dict[str, Any]:
    """OpenAI's verbose_json: language, duration, segments and (when asked) words."""
    body: dict[str, Any] = {
        "task": task.value,
        "language": result.language,
        "duration": round(result.duration, 3),
        "text": result.text,
        "segments": [
            {
                "id": s.id,
                "seek": s.seek,
                "start": round(s.start, 3),
                "end": round(s.end, 3),
                "text": s.text,
                "tokens": list(s.tokens),
                "temperature": s.temperature,
                "avg_logprob": s.avg_logprob,
                "compression_ratio": s.compression_ratio,
                "no_speech_prob": s.no_speech_prob,
            }
            for s in result.segments
        ],
    }
    if include_words:
        body["words"] = [
            {"word": w.word.strip(), "start": round(w.start, 3), "end": round(w.end, 3)}
            for s in result.segments
            for w in s.words
        ]
    return body


def render(
    result: BatchResult, fmt: ResponseFormat, task: Task, include_words: bool
) -> tuple[str | dict[str, Any], str]:
    """Body and media type for ``fmt``."""
    if fmt == ResponseFormat.JSON:
        return {"text": result.text}, "application/json"
    if fmt == ResponseFormat.VERBOSE_JSON:
        return to_verbose_json(result, task, include_words), "application/json"
    if fmt == ResponseFormat.TEXT:
        return result.text + "\n", "text/plain; charset=utf-8"
    if fmt == ResponseFormat.SRT:
        return to_srt(result), "application/x-subrip; charset=utf-8"
    return to_vtt(result), "text/vtt; charset=utf-8"
