"""``theo speak``: a thin client of ``POST /v1/audio/speech``.

With ``--output`` the audio is written to the file as it streams in. Without it, the
speech is played as it arrives when ``sounddevice`` is installed (the ``mic`` extra);
otherwise it is written to ``speech.<format>``.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import click
import httpx

from theo.cli.client import (
    auth_headers,
    error_message,
    fail,
    request,
    resolve_base_url,
    server_option,
)

_FORMATS = ["mp3", "opus", "aac", "flac", "wav", "pcm"]
_TIMEOUT_S = 900.0


@dataclass(frozen=True, slots=True)
class SpeakOptions:
    """A speech request as the command line describes it."""

    base_url: str
    text: str
    model: str
    voice: str | None
    response_format: str
    speed: float
    language: str | None

    def body(self, response_format: str | None = None) -> dict[str, Any]:
        """The JSON body of the request."""
        body: dict[str, Any] = {
            "model": self.model,
            "input": self.text,
            "response_format": response_format or self.response_format,
            "speed": self.speed,
        }
        if self.voice:
            body["voice"] = self.voice
        if self.language:
            body["language"] = self.language
        return body


def _pick_model(base_url: str) -> str:
    """The first ready text-to-speech model on the server."""
    models = request("GET", base_url, "/v1/models", timeout=10.0).json()["data"]
    candidates = [m for m in models if m.get("type") == "tts"]
    if not candidates:
        fail("the server has no text-to-speech model installed; run `theo pull kokoro-v1`.")
    ready = [m for m in candidates if m.get("status") in ("ready", "busy")]
    return str((ready or candidates)[0]["id"])


def _stream(options: SpeakOptions, response_format: str) -> Iterator[tuple[int, bytes]]:
    """Yield ``(sample_rate, bytes)`` as the server streams the audio."""
    url = f"{options.base_url}/v1/audio/speech"
    try:
        with httpx.stream(
            "POST",
            url,
            json=options.body(response_format),
            headers=auth_headers(),
            timeout=_TIMEOUT_S,
        ) as response:
            if response.status_code >= 400:
                response.read()
                fail(error_message(response))
            rate = int(response.headers.get("x-sample-rate", "0"))
            for data in response.iter_bytes():
                yield rate, data
    except httpx.ConnectError:
        fail(f"cannot reach the Theo server at {options.base_url}. Is `theo serve` running?")
    except httpx.TimeoutException:
        fail(f"the Theo server at {options.base_url} did not answer in time.")
    except httpx.HTTPError as exc:
        fail(f"the speech stream broke off: {exc}")


def _write(options: SpeakOptions, output: Path) -> None:
    """Write the audio as it arrives; the file is created only once the server said yes."""
    written = 0
    handle: BinaryIO | None = None
    try:
        for _, data in _stream(options, options.response_format):
            if handle is None:
                handle = output.open("wb")
            handle.write(data)
            written += len(data)
    finally:
        if handle is not None:
            handle.close()
    click.echo(f"Wrote {written} bytes of {options.response_format} audio to {output}.", err=True)


def _sounddevice() -> Any | None:
    """The sounddevice module (it ships no types), or None when it cannot play."""
    try:
        return importlib.import_module("sounddevice")
    except (ImportError, OSError):  # OSError: the PortAudio library is missing
        return None


def _play(options: SpeakOptions, sd: Any) -> None:
    """Stream raw PCM from the server straight to the default output device."""
    player: Any = None
    pending = b""
    try:
        for rate, data in _stream(options, "pcm"):
            if player is None:
                player = sd.RawOutputStream(samplerate=rate, channels=1, dtype="int16")
                player.start()
            pending += data
            whole = len(pending) - len(pending) % 2
            player.write(pending[:whole])
            pending = pending[whole:]
    except sd.PortAudioError as exc:
        fail(f"cannot play audio: {exc}")
    finally:
        if player is not None:
            player.stop()
            player.close()


@click.command("speak")
@click.argument("text")
@click.option("--model", "-m", default=None, help="Model (default: first ready TTS model).")
@click.option("--voice", "-v", default=None, help="Voice id (see GET /v1/audio/voices).")
@click.option(
    "--format",
    "-f",
    "response_format",
    type=click.Choice(_FORMATS),
    default=None,
    help="Audio format (default: from the --output suffix, else mp3).",
)
@click.option(
    "--speed", type=click.FloatRange(0.25, 4.0), default=1.0, help="Pace, 0.25-4.0 (default 1)."
)
@click.option("--language", "-l", default=None, help="Language of the text, e.g. pt-br.")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the audio to this file (default: play it, or write speech.<format>).",
)
@server_option
def speak_cmd(
    text: str,
    model: str | None,
    voice: str | None,
    response_format: str | None,
    speed: float,
    language: str | None,
    output: Path | None,
    server_url: str | None,
) -> None:
    """Speak TEXT with the running server ("-" reads the text from stdin)."""
    if text == "-":
        text = sys.stdin.read()
    suffix = output.suffix.lstrip(".").lower() if output is not None else ""
    fmt = response_format or (suffix if suffix in _FORMATS else "mp3")
    base_url = resolve_base_url(server_url)
    options = SpeakOptions(
        base_url=base_url,
        text=text,
        model=model or _pick_model(base_url),
        voice=voice,
        response_format=fmt,
        speed=speed,
        language=language,
    )
    if output is None:
        sd = _sounddevice()
        if sd is not None:
            _play(options, sd)
            return
        output = Path(f"speech.{fmt}")
        click.echo("sounddevice is not installed (pip install 'theo-openvoice[mic]'):", err=True)
    _write(options, output)
