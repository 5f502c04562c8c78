"""``theo transcribe`` and ``theo translate``: thin clients of the running server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from theo.cli.client import fail, request, resolve_base_url, server_option
from theo.cli.reply import REPLY_MODES
from theo.cli.stream import StreamOptions, run_stream

_FORMATS = ["json", "text", "verbose_json", "srt", "vtt"]
_TIMEOUT_S = 900.0


def _pick_model(base_url: str, need_translation: bool) -> str:
    """The first ready speech-to-text model on the server that can do the task."""
    models = request("GET", base_url, "/v1/models", timeout=10.0).json()["data"]
    candidates = [
        m
        for m in models
        if m.get("type") == "stt"
        and (not need_translation or m.get("capabilities", {}).get("translation"))
    ]
    if not candidates:
        what = "a translation-capable" if need_translation else "a speech-to-text"
        fail(f"the server has no {what} model installed; run `theo pull faster-whisper-base`.")
    ready = [m for m in candidates if m.get("status") in ("ready", "busy")]
    return str((ready or candidates)[0]["id"])


def _send(
    endpoint: str,
    file: Path,
    model: str | None,
    fields: dict[str, str],
    word_timestamps: bool,
    server_url: str | None,
) -> None:
    base_url = resolve_base_url(server_url)
    chosen = model or _pick_model(base_url, need_translation=endpoint.endswith("translations"))
    data: dict[str, Any] = {"model": chosen, **{k: v for k, v in fields.items() if v}}
    if word_timestamps:
        data["timestamp_granularities[]"] = ["word", "segment"]
    with file.open("rb") as handle:
        response = request(
            "POST",
            base_url,
            endpoint,
            data=data,
            files={"file": (file.name, handle)},
            timeout=_TIMEOUT_S,
        )
    if fields.get("response_format", "json") == "json":
        click.echo(response.json()["text"])
    else:
        click.echo(response.text.rstrip("\n"))


_file_argument = click.argument(
    "file", type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
_model_option = click.option(
    "--model", "-m", default=None, help="Model name (default: first ready model on the server)."
)
_format_option = click.option(
    "--format",
    "-f",
    "response_format",
    type=click.Choice(_FORMATS),
    default="json",
    help="Output format; json prints just the text.",
)
_prompt_option = click.option("--prompt", default=None, help="Context or spelling hints.")
_itn_option = click.option(
    "--itn/--no-itn",
    default=None,
    help="Format numbers and entities (default: the model's setting, normally on).",
)
_hot_words_option = click.option(
    "--hot-words", default=None, help='Comma-separated domain words, e.g. "PIX,TED,Itaú".'
)
_denoise_option = click.option(
    "--denoise",
    type=click.Choice(["auto", "on", "off"]),
    default=None,
    help="RNNoise denoising (default auto: on for 8 kHz telephone audio).",
)


def _processing_fields(
    itn: bool | None, hot_words: str | None, denoise: str | None
) -> dict[str, str]:
    fields = {"hot_words": hot_words or "", "denoise": denoise or ""}
    if itn is not None:
        fields["itn"] = "true" if itn else "false"
    return fields


def _stream(
    file: Path | None,
    model: str | None,
    language: str | None,
    hot_words: str | None,
    itn: bool | None,
    denoise: str | None,
    partials: bool | None,
    speed: float | None,
    server_url: str | None,
    reply: str | None = None,
    reply_audio: Path | None = None,
) -> None:
    if speed is not None and file is None:
        raise click.UsageError("--speed applies only when streaming a FILE.")
    if reply_audio is not None and reply is None:
        raise click.UsageError("--reply-audio needs --reply.")
    base_url = resolve_base_url(server_url)
    options = StreamOptions(
        base_url=base_url,
        model=model or _pick_model(base_url, need_translation=False),
        language=language,
        hot_words=tuple(w.strip() for w in (hot_words or "").split(",") if w.strip()),
        partials=partials,
        itn=itn,
        denoise=denoise,
        speed=speed or 1.0,
        reply=reply,
        reply_audio=reply_audio,
    )
    run_stream(options, file)


@click.command("transcribe")
@click.argument(
    "file", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@_model_option
@click.option(
    "--language", "-l", default=None, help="Spoken language (ISO 639-1); default: detect."
)
@_format_option
@_prompt_option
@click.option("--word-timestamps", is_flag=True, help="Include word timings (verbose_json).")
@_itn_option
@_hot_words_option
@_denoise_option
@click.option(
    "--stream",
    is_flag=True,
    help="Realtime: stream FILE at real-time pace, or the microphone without FILE.",
)
@click.option(
    "--partials/--no-partials",
    default=None,
    help="With --stream: show partial transcripts (default: only on a terminal).",
)
@click.option(
    "--speed",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="With --stream FILE: pace as a multiple of real time (default 1).",
)
@click.option(
    "--reply",
    type=click.Choice(REPLY_MODES),
    default=None,
    help="With --stream: the session speaks back; 'echo' says each final again.",
)
@click.option(
    "--reply-audio",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=None,
    help="With --reply: write the spoken replies to this WAV file "
    "(default: play them, when streaming the microphone).",
)
@server_option
def transcribe_cmd(
    file: Path | None,
    model: str | None,
    language: str | None,
    response_format: str,
    prompt: str | None,
    word_timestamps: bool,
    itn: bool | None,
    hot_words: str | None,
    denoise: str | None,
    stream: bool,
    partials: bool | None,
    speed: float | None,
    reply: str | None,
    reply_audio: Path | None,
    server_url: str | None,
) -> None:
    """Transcribe an audio file with the running server, or stream it live with --stream."""
    if stream:
        if prompt or word_timestamps or response_format != "json":
            raise click.UsageError("--prompt, --word-timestamps and --format need a batch request.")
        _stream(
            file,
            model,
            language,
            hot_words,
            itn,
            denoise,
            partials,
            speed,
            server_url,
            reply,
            reply_audio,
        )
        return
    if reply is not None or reply_audio is not None:
        raise click.UsageError("--reply and --reply-audio apply only with --stream.")
    if file is None:
        raise click.UsageError("Missing argument 'FILE' (or use --stream for the microphone).")
    if partials is not None or speed is not None:
        raise click.UsageError("--partials and --speed apply only with --stream.")
    if word_timestamps and response_format != "verbose_json":
        response_format = "verbose_json"
    fields = {
        "language": language or "",
        "response_format": response_format,
        "prompt": prompt or "",
        **_processing_fields(itn, hot_words, denoise),
    }
    _send("/v1/audio/transcriptions", file, model, fields, word_timestamps, server_url)


@click.command("translate")
@_file_argument
@_model_option
@_format_option
@_prompt_option
@_itn_option
@_hot_words_option
@_denoise_option
@server_option
def translate_cmd(
    file: Path,
    model: str | None,
    response_format: str,
    prompt: str | None,
    itn: bool | None,
    hot_words: str | None,
    denoise: str | None,
    server_url: str | None,
) -> None:
    """Translate the speech in an audio file to English text."""
    fields = {
        "response_format": response_format,
        "prompt": prompt or "",
        **_processing_fields(itn, hot_words, denoise),
    }
    _send("/v1/audio/translations", file, model, fields, False, server_url)
