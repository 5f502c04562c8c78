"""``theo transcribe --stream`` without a server: display, pacing, messages and errors."""

from __future__ import annotations

import asyncio
import io
import json
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from websockets.asyncio.server import ServerConnection, serve

from tests.helpers.server import FIXTURES, free_port
from theo.cli.main import cli
from theo.cli.stream import (
    MIC_HINT,
    Display,
    FileSource,
    StreamError,
    StreamOptions,
    configure_message,
    frame_bytes,
    frame_slices,
    load_file,
    open_microphone,
    realtime_url,
    send_deadline,
    stream_session,
)

SCRIPT: list[dict[str, Any]] = [
    {"type": "session.created", "session_id": "s", "model": "m", "config": {}},
    {"type": "vad.speech_start", "segment_id": 1, "timestamp_ms": 100},
    {"type": "transcript.partial", "segment_id": 1, "text": "hello", "timestamp_ms": 600},
    {"type": "transcript.partial", "segment_id": 1, "text": "hello there", "timestamp_ms": 1100},
    {"type": "transcript.final", "segment_id": 1, "text": "Hello there.", "start_ms": 100},
    {"type": "vad.speech_end", "segment_id": 1, "timestamp_ms": 1500},
    {"type": "vad.speech_start", "segment_id": 2, "timestamp_ms": 2000},
    {"type": "transcript.final", "segment_id": 2, "text": " ", "start_ms": 2000},
    {"type": "vad.speech_end", "segment_id": 2, "timestamp_ms": 2300},
    {"type": "vad.speech_start", "segment_id": 3, "timestamp_ms": 3000},
    {"type": "transcript.partial", "segment_id": 3, "text": "general kenobi", "timestamp_ms": 3500},
    {"type": "transcript.final", "segment_id": 3, "text": "General Kenobi!", "start_ms": 3000},
    {"type": "vad.speech_end", "segment_id": 3, "timestamp_ms": 3900},
]


def _render(tty: bool, partials: bool | None = None, width: int = 80) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    display = Display(out, err, tty=tty, partials=partials, width=lambda: width)
    for event in SCRIPT:
        display.event(event)
    display.finish()
    return out.getvalue(), err.getvalue()


def test_piped_output_holds_finals_only_one_per_line() -> None:
    out, err = _render(tty=False)
    assert out == "Hello there.\nGeneral Kenobi!\n"
    assert err == ""


def test_piped_output_can_show_partials_as_marked_lines() -> None:
    out, _ = _render(tty=False, partials=True)
    assert out.splitlines() == [
        "… hello",
        "… hello there",
        "Hello there.",
        "… general kenobi",
        "General Kenobi!",
    ]
    assert "\r" not in out and "\x1b" not in out


def test_terminal_redraws_partials_in_place_and_ends_finals_with_newline() -> None:
    out, _ = _render(tty=True)
    clear = "\r\x1b[2K"
    assert out == (
        f"{clear}hello{clear}hello there{clear}Hello there.\n"
        f"{clear}general kenobi{clear}General Kenobi!\n"
    )


def test_terminal_without_partials_prints_plain_finals() -> None:
    out, _ = _render(tty=True, partials=False)
    assert out == "Hello there.\nGeneral Kenobi!\n"


def test_terminal_keeps_the_newest_words_of_a_partial_wider_than_the_screen() -> None:
    out, err = io.StringIO(), io.StringIO()
    display = Display(out, err, tty=True, width=lambda: 12)
    display.event({"type": "transcript.partial", "text": "one two three four"})
    assert out.getvalue() == "\r\x1b[2K…three four"
    assert len("…three four") == 12 - 1


def test_terminal_shows_unagreed_words_dimmed_after_the_agreed_ones() -> None:
    out, err = io.StringIO(), io.StringIO()
    display = Display(out, err, tty=True, width=lambda: 80)
    assert display.shows_unstable
    display.event({"type": "transcript.partial", "text": "", "unstable_text": "hello"})
    display.event({"type": "transcript.partial", "text": "hello", "unstable_text": "there"})
    display.event({"type": "transcript.partial", "text": "hello there", "unstable_text": ""})
    display.event({"type": "transcript.final", "text": "Hello there."})
    clear, dim, normal = "\r\x1b[2K", "\x1b[2m", "\x1b[22m"
    assert out.getvalue() == (
        f"{clear}{dim}hello{normal}{clear}hello {dim}there{normal}"
        f"{clear}hello there{clear}Hello there.\n"
    )


def test_piped_output_never_shows_unagreed_words() -> None:
    out, err = io.StringIO(), io.StringIO()
    display = Display(out, err, tty=False, partials=True)
    assert not display.shows_unstable
    display.event({"type": "transcript.partial", "text": "", "unstable_text": "hello"})
    display.event({"type": "transcript.partial", "text": "hello", "unstable_text": "there"})
    display.event({"type": "transcript.partial", "text": "hello", "unstable_text": "the"})
    assert out.getvalue() == "… hello\n"


def test_a_terminal_session_asks_for_unagreed_words() -> None:
    plain = StreamOptions("http://x", "m")
    assert configure_message(plain, 16_000, partials=True, unstable=True) == {
        "type": "session.configure",
        "unstable_partials": True,
    }
    assert configure_message(plain, 16_000, partials=False, unstable=True) == {
        "type": "session.configure",
        "enable_partial_transcripts": False,
    }


def test_notice_clears_the_partial_line_and_redraws_it() -> None:
    out, err = io.StringIO(), io.StringIO()
    display = Display(out, err, tty=True, width=lambda: 80)
    display.event({"type": "transcript.partial", "text": "hi"})
    display.notice("Warning: slow down")
    assert out.getvalue() == "\r\x1b[2Khi\r\x1b[2K\r\x1b[2Khi"
    assert err.getvalue() == "Warning: slow down\n"
    display.finish()
    assert out.getvalue().endswith("\r\x1b[2K")


def test_frames_are_20_ms_and_cover_the_audio_exactly() -> None:
    assert frame_bytes(16_000) == 640
    assert frame_bytes(8_000) == 320
    assert frame_bytes(44_100) == 1764
    pcm = bytes(range(256)) * 10  # 2560 bytes = 4 frames at 16 kHz
    frames = list(frame_slices(pcm + b"\x01\x02", 16_000))
    assert [len(f) for f in frames] == [640, 640, 640, 640, 2]
    assert b"".join(frames) == pcm + b"\x01\x02"


@pytest.mark.parametrize(
    ("sent", "speed", "due"),
    [(0, 1.0, 10.0), (640, 1.0, 10.02), (32_000, 1.0, 11.0), (32_000, 2.0, 10.5)],
)
def test_send_deadline_follows_the_audio_clock(sent: int, speed: float, due: float) -> None:
    assert send_deadline(10.0, sent, 16_000, speed) == pytest.approx(due)


def test_send_deadline_stays_within_the_servers_backpressure_allowance() -> None:
    # 60 s of audio at 4x would be 45 s ahead of real time; the server drops past 10 s.
    assert send_deadline(10.0, 60 * 32_000, 16_000, 4.0) == pytest.approx(10.0 + 60 - 1.5)


class _FakeClock:
    """A clock that only moves when the source sleeps."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.mark.parametrize("speed", [1.0, 2.0])
async def test_file_source_sends_every_frame_at_the_requested_pace(speed: float) -> None:
    clock = _FakeClock()
    pcm = bytes(16_000 * 2)  # one second
    source = FileSource(pcm, speed, clock=clock, sleep=clock.sleep)
    sent: list[tuple[float, int]] = []

    async def send(frame: bytes) -> None:
        sent.append((clock.now, len(frame)))

    await source.send_to(send)
    assert [size for _, size in sent] == [640] * 50
    assert sent[1][0] - sent[0][0] == pytest.approx(0.02 / speed)
    assert clock.now - 100.0 == pytest.approx(1.0 / speed)


async def test_file_source_does_not_sleep_when_it_is_behind() -> None:
    clock = _FakeClock()
    source = FileSource(bytes(640 * 3), clock=clock, sleep=clock.sleep)

    async def slow_send(frame: bytes) -> None:
        clock.now += 0.05  # the network takes longer than a frame lasts

    await source.send_to(slow_send)
    assert clock.sleeps == []


def test_load_file_resamples_to_16k_mono_and_appends_a_second_of_silence() -> None:
    pcm = load_file(FIXTURES / "en_librivox_44k_stereo.mp3")
    reference = load_file(FIXTURES / "en_librivox.wav")
    assert abs(len(pcm) - len(reference)) < 16_000 * 2 // 10  # within 100 ms
    tail = np.frombuffer(pcm[-32_000:], dtype="<i2")
    assert not tail.any()
    assert np.abs(np.frombuffer(pcm[:-32_000], dtype="<i2")).max() > 1000


def test_load_file_reports_undecodable_audio(tmp_path: Path) -> None:
    bogus = tmp_path / "notes.wav"
    bogus.write_bytes(b"this is not audio at all" * 10)
    with pytest.raises(StreamError, match="Could not decode"):
        load_file(bogus)


def test_realtime_url_maps_the_scheme_and_encodes_the_query() -> None:
    assert realtime_url("http://127.0.0.1:8000", "faster-whisper-tiny.en", None) == (
        "ws://127.0.0.1:8000/v1/realtime?model=faster-whisper-tiny.en"
    )
    assert realtime_url("https://theo.example/api", "a b", "pt") == (
        "wss://theo.example/api/v1/realtime?model=a+b&language=pt"
    )


def test_configure_sends_only_what_differs_from_the_defaults() -> None:
    plain = StreamOptions("http://x", "m")
    assert configure_message(plain, 16_000, partials=True) is None
    full = StreamOptions("http://x", "m", hot_words=("PIX", "Itaú"), itn=False, denoise="on")
    assert configure_message(full, 44_100, partials=False) == {
        "type": "session.configure",
        "hot_words": ["PIX", "Itaú"],
        "enable_partial_transcripts": False,
        "enable_itn": False,
        "preprocessing": {"denoise": "on"},
        "input_sample_rate": 44_100,
    }


def test_missing_sounddevice_gives_the_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sounddevice", None)
    with pytest.raises(StreamError) as info:
        open_microphone()
    assert str(info.value) == MIC_HINT


class _PortAudioError(Exception):
    pass


def _fake_sounddevice(default_rate: float, blocks: list[bytes]) -> types.ModuleType:
    module = types.ModuleType("sounddevice")

    class RawInputStream:
        def __init__(self, **kwargs: Any) -> None:
            self.kwargs = kwargs
            module.opened = kwargs  # type: ignore[attr-defined]

        def __enter__(self) -> RawInputStream:
            for block in blocks:  # PortAudio calls back from its own thread
                self.kwargs["callback"](block, len(block) // 2, None, None)
            return self

        def __exit__(self, *exc: object) -> None:
            module.closed = True  # type: ignore[attr-defined]

    module.PortAudioError = _PortAudioError  # type: ignore[attr-defined]
    module.RawInputStream = RawInputStream  # type: ignore[attr-defined]
    module.query_devices = lambda kind: {  # type: ignore[attr-defined]
        "name": "Fake Mic",
        "default_samplerate": default_rate,
    }
    return module


@pytest.mark.parametrize(("device_rate", "used"), [(44_100.0, 44_100), (96_000.0, 48_000)])
def test_microphone_uses_the_device_rate_within_the_server_range(
    monkeypatch: pytest.MonkeyPatch, device_rate: float, used: int
) -> None:
    monkeypatch.setitem(sys.modules, "sounddevice", _fake_sounddevice(device_rate, []))
    mic = open_microphone()
    assert mic.sample_rate == used
    assert mic.banner is not None and "Fake Mic" in mic.banner


async def test_microphone_forwards_blocks_until_cancelled(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = _fake_sounddevice(16_000.0, [b"\x01\x00" * 320, b"\x02\x00" * 320])
    monkeypatch.setitem(sys.modules, "sounddevice", fake)
    mic = open_microphone()
    got: list[bytes] = []
    two = asyncio.Event()

    async def send(frame: bytes) -> None:
        got.append(frame)
        if len(got) == 2:
            two.set()

    task = asyncio.create_task(mic.send_to(send))
    await asyncio.wait_for(two.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert got == [b"\x01\x00" * 320, b"\x02\x00" * 320]
    assert fake.opened["blocksize"] == 320 and fake.opened["dtype"] == "int16"  # type: ignore[attr-defined]
    assert fake.closed  # type: ignore[attr-defined]


# A scripted server: the edges of a real WebSocket session, with the events chosen here.


class _ScriptedServer:
    def __init__(self, script: list[dict[str, Any]], close_code: int = 1000) -> None:
        self.script = script
        self.close_code = close_code
        self.received: list[Any] = []

    async def handler(self, ws: ServerConnection) -> None:
        await ws.send(json.dumps(self.script[0]))
        if self.script[0]["type"] == "error":
            await ws.close(self.close_code, "rejected")
            return
        async for message in ws:
            self.received.append(message if isinstance(message, bytes) else json.loads(message))
            if isinstance(message, str) and json.loads(message)["type"] == "session.close":
                for event in self.script[1:]:
                    await ws.send(json.dumps(event))
                await ws.close(self.close_code)
                return


async def _run(server: _ScriptedServer, tty: bool = False) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    async with serve(server.handler, "127.0.0.1", 0) as ws_server:
        port = ws_server.sockets[0].getsockname()[1]
        options = StreamOptions(f"http://127.0.0.1:{port}", "m", hot_words=("PIX",))
        source = FileSource(bytes(640 * 5), speed=50.0)
        display = Display(out, err, tty=tty)
        try:
            await stream_session(options, source, display, asyncio.Event())
        finally:
            ws_server.close()
    return out.getvalue(), err.getvalue()


async def test_session_sends_configure_audio_then_close_and_prints_finals() -> None:
    server = _ScriptedServer([*SCRIPT, {"type": "session.closed", "reason": "client_close"}])
    out, _ = await _run(server)
    assert out == "Hello there.\nGeneral Kenobi!\n"
    assert server.received[0] == {
        "type": "session.configure",
        "hot_words": ["PIX"],
        "enable_partial_transcripts": False,
    }
    audio = server.received[1:-1]
    assert [len(frame) for frame in audio] == [640] * 5
    assert server.received[-1] == {"type": "session.close"}


async def test_recoverable_errors_are_warnings_and_the_session_goes_on() -> None:
    warning = {"type": "error", "code": "invalid_value", "message": "bad", "recoverable": True}
    server = _ScriptedServer([*SCRIPT[:5], warning, *SCRIPT[5:], {"type": "session.closed"}])
    out, err = await _run(server)
    assert out == "Hello there.\nGeneral Kenobi!\n"
    assert err == "Warning: bad\n"


async def test_a_fatal_error_event_ends_the_session_with_its_message() -> None:
    fatal = {"type": "error", "code": "worker_unavailable", "message": "worker died"}
    server = _ScriptedServer([SCRIPT[0], SCRIPT[4], {**fatal, "recoverable": False}], 1011)
    with pytest.raises(StreamError, match=r"^worker died$"):
        await _run(server)


async def test_a_rejected_session_reports_the_servers_message() -> None:
    reject = {"type": "error", "code": "model_not_found", "message": "Model 'x' is not installed."}
    server = _ScriptedServer([{**reject, "recoverable": False}], close_code=1008)
    with pytest.raises(StreamError, match=r"^Model 'x' is not installed\.$"):
        await _run(server)


async def test_a_close_without_session_closed_is_an_error() -> None:
    server = _ScriptedServer([SCRIPT[0]], close_code=1008)
    with pytest.raises(StreamError, match=r"closed the connection: .*\(code 1008\)"):
        await _run(server)


async def test_no_server_means_cannot_reach() -> None:
    options = StreamOptions(f"http://127.0.0.1:{free_port()}", "m")
    display = Display(io.StringIO(), io.StringIO(), tty=False)
    with pytest.raises(StreamError, match=r"cannot reach the Theo server at http://127\.0\.0\.1"):
        await stream_session(options, FileSource(b""), display, asyncio.Event())


def test_cli_without_a_server_exits_1_with_the_message() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = CliRunner().invoke(
        cli,
        ["transcribe", "--stream", str(FIXTURES / "en_short.wav"), "-m", "m", "--server", url],
    )
    assert result.exit_code == 1
    assert result.output == (
        f"Error: cannot reach the Theo server at {url}. Is `theo serve` running?\n"
    )


def test_cli_without_sounddevice_exits_1_with_the_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sounddevice", None)
    result = CliRunner().invoke(cli, ["transcribe", "--stream", "-m", "m"])
    assert result.exit_code == 1
    assert result.output == f"Error: {MIC_HINT}\n"
    assert "pip install 'theo-openvoice[mic]'" in MIC_HINT


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["transcribe"], "Missing argument 'FILE'"),
        (["transcribe", "--stream", "--prompt", "x", "f.wav"], "need a batch request"),
        (["transcribe", "--stream", "--speed", "2"], "--speed applies only"),
        (["transcribe", "--partials", "f.wav"], "apply only with --stream"),
        (["transcribe", "--stream", "--speed", "0"], "x>0"),
    ],
)
def test_cli_rejects_options_that_do_not_fit(
    args: list[str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "f.wav").write_bytes(b"")
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2
    assert message in result.output


def test_run_stream_is_what_the_cli_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[StreamOptions, Path | None]] = []
    monkeypatch.setattr(
        "theo.cli.transcribe.run_stream", lambda options, file: calls.append((options, file))
    )
    wav = FIXTURES / "en_short.wav"
    args = ["transcribe", "--stream", str(wav), "-m", "m", "-l", "pt", "--hot-words", "PIX, TED"]
    result = CliRunner().invoke(cli, [*args, "--speed", "2", "--server", "http://h:1/"])
    assert result.exit_code == 0, result.output
    assert calls == [
        (
            StreamOptions("http://h:1", "m", "pt", ("PIX", "TED"), speed=2.0),
            wav,
        )
    ]
