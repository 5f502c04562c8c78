"""``theo transcribe --stream``: stream a file or the microphone to ``WS /v1/realtime``.

On a terminal, partial transcripts are redrawn in place and each final gets its own line.
Piped output holds finals only, one per line, so it stays easy to consume.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import shutil
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TextIO
from urllib.parse import urlencode

import numpy as np
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from theo.audio.decode import decode_audio
from theo.audio.pcm import ENGINE_SAMPLE_RATE, float_to_pcm16
from theo.cli.client import auth_headers, fail, unauthorized_hint
from theo.cli.reply import EchoBot, ReplySink, SpeakerSink, WavSink
from theo.errors import AudioFormatError
from theo.preprocessing.resample import Resample

FRAME_MS = 20
TAIL_SILENCE_S = 1.0
"""Silence sent after a file so the server's VAD sees the last utterance end."""
_OPEN_TIMEOUT_S = 10.0
MAX_LEAD_S = 1.5
"""How far ahead of real time ``--speed`` may send a file (server backpressure starts at 2 s)."""
_CLOSE_TIMEOUT_S = 120.0  # the server decodes the last segment before it answers
_MIN_RATE, _MAX_RATE = 8_000, 48_000  # the input_sample_rate range the server accepts
_CLEAR_LINE = "\r\x1b[2K"
_DIM, _NORMAL = "\x1b[2m", "\x1b[22m"
_REPLY_QUIET_S = 2.0
"""With --reply, after a file ends: how long nothing must happen before closing."""
MIC_HINT = "microphone streaming needs `pip install 'theo-openvoice[mic]'`"

Send = Callable[[bytes], Awaitable[None]]


class StreamError(Exception):
    """Ends the stream: the message goes to stderr and the exit status is 1."""


@dataclass(frozen=True, slots=True)
class StreamOptions:
    """What ``theo transcribe --stream`` was asked to do."""

    base_url: str
    model: str
    language: str | None = None
    hot_words: tuple[str, ...] = ()
    partials: bool | None = None
    """None: redrawn on a terminal, hidden elsewhere; True: always shown; False: never."""
    itn: bool | None = None
    denoise: str | None = None
    speed: float = 1.0
    """Pace of a file as a multiple of real time."""
    reply: str | None = None
    """``echo``: speak each final back (see :mod:`theo.cli.reply`)."""
    reply_audio: Path | None = None
    """Where to write the replies' audio (WAV); default: the speakers, with a microphone."""


class AudioSource(Protocol):
    """Where the PCM16 mono frames come from."""

    sample_rate: int
    banner: str | None

    async def send_to(self, send: Send) -> None:
        """Send every frame, paced like live audio, until the source ends or is cancelled."""


def frame_bytes(rate: int, frame_ms: int = FRAME_MS) -> int:
    """Bytes in one PCM16 mono frame of ``frame_ms`` at ``rate``."""
    return rate * frame_ms // 1000 * 2


def frame_slices(pcm: bytes, rate: int, frame_ms: int = FRAME_MS) -> Iterator[bytes]:
    """``pcm`` cut into frames of ``frame_ms``; the last one may be shorter."""
    size = frame_bytes(rate, frame_ms)
    for index in range(0, len(pcm), size):
        yield pcm[index : index + size]


def send_deadline(start: float, sent_bytes: int, rate: int, speed: float) -> float:
    """The clock time at which ``sent_bytes`` of audio have played at ``speed`` x real time.

    Never more than ``MAX_LEAD_S`` ahead of real time: the realtime API's backpressure asks
    a faster client to slow down (past 2 s) and drops its audio (past 10 s).
    """
    seconds = sent_bytes / (2 * rate)
    return max(start + seconds / speed, start + seconds - MAX_LEAD_S)


def load_file(path: Path) -> bytes:
    """Decode any audio file to 16 kHz mono PCM16, silence appended for the VAD."""
    try:
        with path.open("rb") as handle:
            audio = decode_audio(handle)
    except AudioFormatError as exc:
        raise StreamError(exc.message) from exc
    resample = Resample(audio.sample_rate)
    samples = np.concatenate([resample.process(audio.samples), resample.flush()])
    return float_to_pcm16(samples) + bytes(
        frame_bytes(ENGINE_SAMPLE_RATE, round(TAIL_SILENCE_S * 1000))
    )


@dataclass
class FileSource:
    """A decoded file, sent in 20 ms frames at ``speed`` x real time."""

    pcm: bytes
    speed: float = 1.0
    sample_rate: int = ENGINE_SAMPLE_RATE
    banner: str | None = None
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep

    async def send_to(self, send: Send) -> None:
        """Send each frame once the previous ones have had time to play."""
        start, sent = self.clock(), 0
        for frame in frame_slices(self.pcm, self.sample_rate):
            await send(frame)
            sent += len(frame)
            delay = send_deadline(start, sent, self.sample_rate, self.speed) - self.clock()
            if delay > 0:
                await self.sleep(delay)


@dataclass
class MicrophoneSource:
    """The default input device, recorded by ``sounddevice`` in 20 ms blocks."""

    sd: Any  # the sounddevice module, imported lazily; it ships no type information
    sample_rate: int
    banner: str | None = None

    async def send_to(self, send: Send) -> None:
        """Forward blocks from PortAudio's thread to the socket until cancelled."""
        loop = asyncio.get_running_loop()
        blocks: asyncio.Queue[bytes] = asyncio.Queue()

        def on_block(data: Any, frames: int, when: Any, status: Any) -> None:
            loop.call_soon_threadsafe(blocks.put_nowait, bytes(data))

        try:
            with self.sd.RawInputStream(
                samplerate=self.sample_rate,
                channels=1,
                dtype="int16",
                blocksize=frame_bytes(self.sample_rate) // 2,
                callback=on_block,
            ):
                while True:
                    await send(await blocks.get())
        except self.sd.PortAudioError as exc:
            raise StreamError(f"cannot record from the microphone: {exc}") from exc


def open_microphone() -> MicrophoneSource:
    """The default microphone at its own rate, kept within what the server accepts."""
    try:
        sd = importlib.import_module("sounddevice")
    except ImportError as exc:
        raise StreamError(MIC_HINT) from exc
    except OSError as exc:  # sounddevice raises it when the PortAudio library is missing
        raise StreamError(f"the microphone needs the PortAudio library: {exc}") from exc
    try:
        device = sd.query_devices(kind="input")
    except (sd.PortAudioError, ValueError) as exc:
        raise StreamError(f"no microphone found: {exc}") from exc
    rate = min(max(round(device["default_samplerate"]), _MIN_RATE), _MAX_RATE)
    banner = f"Listening on {device['name']} ({rate} Hz); press Ctrl+C to stop."
    return MicrophoneSource(sd, rate, banner)


@dataclass
class Display:
    """Renders transcripts: partials in place on a terminal, finals one per line."""

    out: TextIO
    err: TextIO
    tty: bool
    partials: bool | None = None
    width: Callable[[], int] = field(default=lambda: shutil.get_terminal_size().columns)
    _partial: str = field(default="", init=False)
    _unstable: str = field(default="", init=False)

    @property
    def shows_partials(self) -> bool:
        """Whether partials are displayed at all (and so worth asking the server for)."""
        return self.tty if self.partials is None else self.partials

    @property
    def shows_unstable(self) -> bool:
        """Whether not-yet-agreed words are shown (dimmed after the agreed ones): only on a
        terminal, where the line is redrawn; piped output keeps only what is agreed."""
        return self.tty and self.shows_partials

    def event(self, event: dict[str, Any]) -> None:
        """Render one server event; the ones that carry no transcript are ignored."""
        kind, text = event.get("type"), str(event.get("text", "")).strip()
        if kind == "transcript.partial" and self.shows_partials:
            unstable = str(event.get("unstable_text") or "").strip()
            if self.shows_unstable:
                self._unstable = unstable
            elif text == self._partial:
                return  # only unagreed words changed
            self._show_partial(text)
        elif kind == "transcript.final":
            self._clear()
            self._partial = self._unstable = ""
            if text:
                self._write(f"{text}\n")

    def notice(self, message: str) -> None:
        """A line on stderr that does not garble the partial being redrawn."""
        self._clear()
        print(message, file=self.err, flush=True)
        if self._partial:
            self._show_partial(self._partial)

    def reply(self, text: str) -> None:
        """A reply the session starts speaking, on its own line (``» text``)."""
        self._clear()
        self._write(f"» {text}\n")
        if self._partial:
            self._show_partial(self._partial)

    def finish(self) -> None:
        """Leave the terminal line clean when the session ends."""
        self._clear()

    def _show_partial(self, text: str) -> None:
        self._partial = text
        if not self.tty:
            self._write(f"… {text}\n")
            return
        # Only the current row can be redrawn, so a long partial keeps its newest words.
        room = max(self.width() - 1, 2)
        unstable = self._unstable
        line = f"{text} {unstable}" if text and unstable else text or unstable
        if len(line) > room:
            line = "…" + line[-(room - 1) :]
        if not unstable:
            self._write(f"{_CLEAR_LINE}{line}")
            return
        cut = max(len(line) - len(unstable), 0)
        self._write(f"{_CLEAR_LINE}{line[:cut]}{_DIM}{line[cut:]}{_NORMAL}")

    def _clear(self) -> None:
        if self.tty and self._partial:
            self._write(_CLEAR_LINE)

    def _write(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()


def realtime_url(base_url: str, model: str, language: str | None) -> str:
    """The WebSocket URL of a session with ``model`` on the server at ``base_url``."""
    scheme, _, rest = base_url.partition("://")
    ws_scheme = {"http": "ws", "https": "wss"}.get(scheme, scheme)
    query = {"model": model, **({"language": language} if language else {})}
    return f"{ws_scheme}://{rest}/v1/realtime?{urlencode(query)}"


def configure_message(
    options: StreamOptions, sample_rate: int, partials: bool, *, unstable: bool = False
) -> dict[str, Any] | None:
    """The ``session.configure`` command for the settings that differ from the defaults
    (``unstable``: ask for the words not agreed yet, to show them sooner)."""
    config: dict[str, Any] = {}
    if options.hot_words:
        config["hot_words"] = list(options.hot_words)
    if not partials:
        config["enable_partial_transcripts"] = False  # spares the server the re-decoding
    elif unstable:
        config["unstable_partials"] = True
    if options.itn is not None:
        config["enable_itn"] = options.itn
    if options.denoise:
        config["preprocessing"] = {"denoise": options.denoise}
    if sample_rate != ENGINE_SAMPLE_RATE:
        config["input_sample_rate"] = sample_rate
    return {"type": "session.configure", **config} if config else None


def _closed_message(ws: ClientConnection) -> str:
    reason = ws.close_reason or "no reason given"
    return f"the server closed the connection: {reason} (code {ws.close_code})."


def _refusal_message(exc: InvalidStatus, base_url: str) -> str:
    """Why the server refused the handshake: its OpenAI-shaped message when it sent one."""
    status = exc.response.status_code
    message = f"the server at {base_url} refused the realtime session (HTTP {status})."
    try:
        body: Any = json.loads(exc.response.body or b"")
        message = f"{message[:-1]}: {body['error']['message']}"
    except (ValueError, KeyError, TypeError):
        pass
    return f"{message} {unauthorized_hint()}" if status == 401 else message


async def _connect(url: str, base_url: str) -> ClientConnection:
    try:
        return await connect(
            url, open_timeout=_OPEN_TIMEOUT_S, max_size=None, additional_headers=auth_headers()
        )
    except InvalidStatus as exc:
        raise StreamError(_refusal_message(exc, base_url)) from exc
    except TimeoutError as exc:
        raise StreamError(f"the Theo server at {base_url} did not answer in time.") from exc
    except InvalidURI as exc:
        raise StreamError(f"invalid server URL: {base_url}") from exc
    except (OSError, InvalidHandshake) as exc:
        raise StreamError(
            f"cannot reach the Theo server at {base_url}. Is `theo serve` running?"
        ) from exc


async def _next_message(ws: ClientConnection) -> dict[str, Any] | bytes:
    try:
        message = await ws.recv()
    except ConnectionClosed as exc:
        raise StreamError(_closed_message(ws)) from exc
    if isinstance(message, bytes):
        return message  # reply audio
    event: dict[str, Any] = json.loads(message)
    return event


async def _next_event(ws: ClientConnection) -> dict[str, Any]:
    while isinstance(message := await _next_message(ws), bytes):
        pass
    return message


@dataclass
class Replies:
    """What ``--reply`` adds to a session: the bot that answers and where its audio goes."""

    bot: EchoBot
    sink: ReplySink | None


async def _receive(ws: ClientConnection, display: Display, replies: Replies | None) -> None:
    """Render events until ``session.closed``; a fatal error raises :class:`StreamError`.

    With ``replies``, each final is answered with ``tts.speak`` and the audio that comes
    back goes to the reply sink.
    """
    while True:
        event = await _next_message(ws)
        if isinstance(event, bytes):
            if replies is not None and replies.sink is not None:
                replies.sink.write(event)
            continue
        kind = event["type"]
        if kind == "session.closed":
            return
        if kind == "error":
            if not event.get("recoverable"):
                raise StreamError(str(event.get("message")))
            display.notice(f"Warning: {event.get('message')}")
            continue
        display.event(event)
        if replies is None:
            continue
        if kind == "transcript.final" and (speak := replies.bot.answer(str(event["text"]))):
            with contextlib.suppress(ConnectionClosed):
                await ws.send(json.dumps(speak))
        elif kind == "tts.speaking_start" and (text := replies.bot.said(event)):
            display.reply(text)
        elif kind == "tts.speaking_end":
            replies.bot.ended(event)


async def _replies_done(replies: Replies) -> None:
    """Wait until every reply was spoken (and played) and nothing new came for a while."""
    async with asyncio.timeout(_CLOSE_TIMEOUT_S):
        while True:  # the condition is about elapsed time: polled
            playing = replies.sink is not None and replies.sink.busy
            if replies.bot.idle_for(_REPLY_QUIET_S) and not playing:
                return
            await asyncio.sleep(0.1)


def _reply_sink(options: StreamOptions, source: AudioSource) -> ReplySink | None:
    if options.reply_audio is not None:
        return WavSink(options.reply_audio, source.sample_rate)
    if isinstance(source, MicrophoneSource):
        return SpeakerSink(source.sd, source.sample_rate)
    return None


async def stream_session(
    options: StreamOptions, source: AudioSource, display: Display, stop: asyncio.Event
) -> None:
    """One realtime session: stream ``source`` until it ends or ``stop`` is set, then close.

    Raises:
        StreamError: the server is unreachable, rejects the session or fails in it.
    """
    url = realtime_url(options.base_url, options.model, options.language)
    async with await _connect(url, options.base_url) as ws:
        first = await _next_event(ws)
        if first["type"] != "session.created":
            raise StreamError(str(first.get("message", f"unexpected event {first['type']}")))
        configure = configure_message(
            options, source.sample_rate, display.shows_partials, unstable=display.shows_unstable
        )
        if configure:
            await ws.send(json.dumps(configure))
        if source.banner:
            display.notice(source.banner)
        replies = Replies(EchoBot(), _reply_sink(options, source)) if options.reply else None
        receiver = asyncio.create_task(_receive(ws, display, replies))
        sender = asyncio.create_task(source.send_to(ws.send))
        stopped = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({receiver, sender, stopped}, return_when=asyncio.FIRST_COMPLETED)
            if sender.done() and not isinstance(sender.exception(), ConnectionClosed | None):
                sender.result()
            if replies is not None and sender.done() and not receiver.done():
                # The file ended: let the last final be answered and spoken before closing
                # (closing the session cancels the speech still playing).
                waiting = asyncio.create_task(_replies_done(replies))
                await asyncio.wait(
                    {waiting, receiver, stopped}, return_when=asyncio.FIRST_COMPLETED
                )
                waiting.cancel()
            if not receiver.done():
                sender.cancel()
                with contextlib.suppress(ConnectionClosed):
                    await ws.send(json.dumps({"type": "session.close"}))
            try:
                await asyncio.wait_for(receiver, _CLOSE_TIMEOUT_S)
            except TimeoutError as exc:
                raise StreamError("the server did not finish the session in time.") from exc
        finally:
            for task in (receiver, sender, stopped):
                task.cancel()
            await asyncio.gather(receiver, sender, stopped, return_exceptions=True)
            if replies is not None and replies.sink is not None:
                replies.sink.close()
            display.finish()


async def _main(options: StreamOptions, source: AudioSource, display: Display) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    main = asyncio.current_task()

    def on_interrupt() -> None:
        if stop.is_set() and main is not None:
            main.cancel()  # a second Ctrl+C quits without waiting
            return
        stop.set()
        display.notice("Stopping: waiting for the last transcript (Ctrl+C again to quit).")

    with contextlib.suppress(NotImplementedError):  # no loop signal handlers on Windows
        loop.add_signal_handler(signal.SIGINT, on_interrupt)
    try:
        await stream_session(options, source, display, stop)
    finally:
        with contextlib.suppress(NotImplementedError):
            loop.remove_signal_handler(signal.SIGINT)


def run_stream(options: StreamOptions, file: Path | None) -> None:
    """Stream ``file`` (or the microphone when None) and print the transcripts; exits 1 on error."""
    display = Display(sys.stdout, sys.stderr, tty=sys.stdout.isatty(), partials=options.partials)
    try:
        source: AudioSource = (
            open_microphone() if file is None else FileSource(load_file(file), options.speed)
        )
        asyncio.run(_main(options, source, display))
    except StreamError as exc:
        fail(str(exc))
    except asyncio.CancelledError:
        raise SystemExit(130) from None
