"""Telephony orchestration through a real `theo serve` on the fake-engine tier: real UDP
datagrams, real AudioSocket TCP connections and a real calls-events WebSocket, with the
scripted fake engine standing in for the model (the real-engine proof is
``test_telephony_e2e.py``)."""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import socket
import struct
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import numpy as np
import pytest
import websockets

from tests.helpers.audio import read_wav
from tests.helpers.fake import FAKE_STT, install_fake_stt, install_fake_tts, serving_fake
from tests.helpers.memory import status_kb
from tests.helpers.realtime import run_session, ws_url
from tests.helpers.server import FIXTURES, RunningServer, free_port, wait_for
from tests.helpers.telephony import (
    AudioSocketPhone,
    CallWatcher,
    RtpPhone,
    audiosocket_call,
    rtp_packets,
    send_datagrams,
    send_rtp_call,
    spacing_ms,
)
from theo.audio.g711 import pcm16_to_ulaw
from theo.telephony.audiosocket import FrameKind, encode_frame
from theo.telephony.rtp import build_rtp

SCRIPT = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima"
MAX_CALLS = 4
IDLE_MS = 1_000


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Ports:
    rtp: int
    audiosocket: int


@pytest.fixture(scope="module")
def ports() -> Ports:
    return Ports(rtp=_free_udp_port(), audiosocket=free_port())


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, ports: Ports) -> Iterator[RunningServer]:
    home = tmp_path_factory.mktemp("fake-telephony-home")
    install_fake_stt(home, transcript=SCRIPT, words_per_second=3)
    install_fake_tts(home, seconds_per_char=0.05, synthesis_delay_s=0.1)
    env = {
        "THEO_TELEPHONY__MAX_CALLS": str(MAX_CALLS),
        "THEO_TELEPHONY__IDLE_TIMEOUT_MS": str(IDLE_MS),
    }
    # The ports as a user gives them: `theo serve --rtp-port --audiosocket-port`.
    args = ["--rtp-port", str(ports.rtp), "--audiosocket-port", str(ports.audiosocket)]
    log_path = tmp_path_factory.mktemp("fake-telephony-logs") / "serve.log"
    with serving_fake(home, log_path, extra_env=env, extra_args=args) as running:
        yield running


def _speech_8k(seconds: float = 3.5) -> np.ndarray:
    samples, rate = read_wav(FIXTURES / "en_librivox_8k.wav")
    assert rate == 8_000
    return np.concatenate([samples[: int(seconds * rate)], np.zeros(rate // 2, np.int16)])


def _metric(server: RunningServer, name: str, **labels: str) -> float:
    text = httpx.get(f"{server.base_url}/metrics", timeout=10).text
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))  # as exposed
    for line in text.splitlines():
        if line.startswith(f"{name}{{{wanted}}} ") or (not labels and line.startswith(name + " ")):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _calls(server: RunningServer) -> list[dict[str, object]]:
    body = httpx.get(f"{server.base_url}/v1/calls", timeout=10).json()
    assert body["object"] == "list"
    calls: list[dict[str, object]] = body["data"]
    return calls


def _wait_no_calls(server: RunningServer) -> None:
    wait_for(lambda: not _calls(server), 30, "every call to end")


def test_rtp_call_is_announced_transcribed_listed_and_ended_on_idle(
    server: RunningServer, ports: Ports
) -> None:
    async def scenario() -> tuple[list[dict[str, object]], object]:
        async with CallWatcher(server.base_url) as watcher:
            sending = asyncio.create_task(
                send_rtp_call("127.0.0.1", ports.rtp, _speech_8k(), "pcmu", ssrc=0x1234)
            )
            await watcher.wait_for(lambda log: bool(log.started()), 10)
            listed = await asyncio.to_thread(_calls, server)
            report = await sending
            await watcher.wait_ended(1, 30)
            return listed, (watcher.log, report)

    listed, (log, report) = asyncio.run(scenario())
    (started,) = log.started()
    call_id = started["call_id"]
    assert started["transport"] == "rtp"
    assert started["codec"] == "pcmu"
    assert started["sample_rate"] == 8_000
    assert started["model"] == FAKE_STT
    assert started["audio_quality"] == "telephony"
    assert str(started["remote"]).startswith("127.0.0.1:")
    assert [c["call_id"] for c in listed] == [call_id]
    assert listed[0]["transport"] == "rtp"
    assert "received" in listed[0]["statistics"]  # type: ignore[operator]
    kinds = [e["type"] for e in log.of_call(call_id)]
    assert kinds[0] == "call.started"
    assert kinds[1] == "session.created"
    assert "vad.speech_start" in kinds
    assert kinds[-2:] == ["session.closed", "call.ended"]
    finals = log.finals(call_id)
    assert finals and " ".join(finals).lower().split()[0].strip(".,") == "alpha"
    (ended,) = log.ended()
    assert ended["reason"] == "idle_timeout"
    stats = ended["statistics"]
    assert stats["received"] == report.packets  # every packet, across the wrap-around
    assert stats["lost"] == stats["late"] == stats["duplicate"] == 0
    assert not _calls(server)


def test_rtcp_bye_ends_the_call_with_its_final(server: RunningServer, ports: Ports) -> None:
    async def scenario() -> object:
        async with CallWatcher(server.base_url) as watcher:
            await send_rtp_call(
                "127.0.0.1", ports.rtp, _speech_8k(2.0), "pcma", ssrc=0xB7E, bye=True
            )
            return await watcher.wait_ended(1, 10)

    log = asyncio.run(scenario())
    (ended,) = log.ended()
    assert ended["reason"] == "bye"
    assert log.finals(ended["call_id"])


def test_dtmf_over_rtp_and_audiosocket(server: RunningServer, ports: Ports) -> None:
    async def scenario() -> object:
        async with CallWatcher(server.base_url) as watcher:
            speech = rtp_packets(_speech_8k(1.0), "pcmu", ssrc=0xD7)
            # RFC 4733: key 5 sent three times, then its end packet three times.
            event = [
                build_rtp(
                    payload_type=101,
                    sequence=100 + i,
                    timestamp=80_000,
                    ssrc=0xD7,
                    payload=struct.pack("!BBH", 5, 0x80 if i >= 3 else 0, 160 * (i + 1)),
                )
                for i in range(6)
            ]
            plan = [(i * 0.02, p) for i, p in enumerate(speech)]
            plan += [(1.1 + i * 0.02, p) for i, p in enumerate(event)]
            await send_datagrams("127.0.0.1", ports.rtp, plan)
            reader, writer = await asyncio.open_connection("127.0.0.1", ports.audiosocket)
            writer.write(encode_frame(FrameKind.UUID, uuid.uuid4().bytes))
            writer.write(encode_frame(FrameKind.AUDIO, bytes(320)))
            writer.write(encode_frame(FrameKind.DTMF, b"#"))
            writer.write(encode_frame(FrameKind.HANGUP))
            await writer.drain()
            await asyncio.wait_for(reader.read(), 10)
            writer.close()
            return await watcher.wait_ended(2, 15)

    log = asyncio.run(scenario())
    digits = [e["digit"] for e in log.events if e["type"] == "call.dtmf"]
    assert sorted(digits) == ["#", "5"]


def test_malformed_and_unknown_rtp_is_counted_and_harms_no_call(
    server: RunningServer, ports: Ports
) -> None:
    good = build_rtp(payload_type=0, sequence=1, timestamp=0, ssrc=9, payload=bytes(160))
    bad = {
        "too_short": good[:11],
        "bad_version": bytes([0x40]) + good[1:],
        "csrc_past_end": bytes([0x8F]) + good[1:12],
        "extension_past_end": bytes([0x90]) + good[1:12] + b"\xbe\xde\x00\x40",
        "bad_padding": bytes([0xA0]) + good[1:12] + b"\x00\x00\x00\xff",
    }
    unknown = build_rtp(payload_type=34, sequence=1, timestamp=0, ssrc=77, payload=bytes(100))
    malformed_before = _metric(server, "theo_rtp_packets_total", outcome="malformed")
    unknown_before = _metric(server, "theo_rtp_packets_total", outcome="unknown_payload")

    async def scenario() -> object:
        async with CallWatcher(server.base_url) as watcher:
            call = asyncio.create_task(
                send_rtp_call("127.0.0.1", ports.rtp, _speech_8k(), "pcmu", ssrc=0xC0DE)
            )
            await asyncio.sleep(0.5)
            garbage = [(i * 0.01, d) for i, d in enumerate([*bad.values(), unknown])]
            await send_datagrams("127.0.0.1", ports.rtp, garbage)
            await call
            return await watcher.wait_ended(1, 15)

    log = asyncio.run(scenario())
    (ended,) = log.ended()
    assert ended["reason"] == "idle_timeout"
    assert log.finals(ended["call_id"])
    assert ended["statistics"]["lost"] == 0
    assert _metric(server, "theo_rtp_packets_total", outcome="malformed") == malformed_before + 5
    assert (
        _metric(server, "theo_rtp_packets_total", outcome="unknown_payload") == unknown_before + 1
    )
    assert server.health()["status"] == "ok"


def test_a_flood_of_ssrcs_is_capped_counted_and_forgotten(
    server: RunningServer, ports: Ports
) -> None:
    rng = random.Random(3)
    refused_before = _metric(server, "theo_calls_total", transport="rtp", reason="refused")

    def flood() -> list[tuple[float, bytes]]:
        ssrcs = [rng.getrandbits(32) for _ in range(50)]
        return [
            (
                i * 0.0005,
                build_rtp(
                    payload_type=0,
                    sequence=i // 50,
                    timestamp=160 * (i // 50),
                    ssrc=ssrcs[i % 50],
                    payload=rng.randbytes(160),
                ),
            )
            for i in range(1_000)
        ]

    async def scenario() -> int:
        await send_datagrams("127.0.0.1", ports.rtp, flood())
        await asyncio.sleep(0.3)
        return len(await asyncio.to_thread(_calls, server))

    pid = server.process.pid
    live = asyncio.run(scenario())
    assert live == MAX_CALLS
    _wait_no_calls(server)
    refused = _metric(server, "theo_calls_total", transport="rtp", reason="refused")
    assert refused - refused_before == 50 - MAX_CALLS
    asyncio.run(scenario())  # the allocator's pools warm up over the first calls
    _wait_no_calls(server)
    rss_warm = status_kb(pid, "VmRSS")
    for _ in range(3):
        asyncio.run(scenario())
        _wait_no_calls(server)
    # Refused streams are forgotten after the idle timeout, and an ended call's buffers
    # are freed at once: more floods cost next to nothing. Before that it was 2 MB a call,
    # 24 MB over these three floods; the allocator alone has been seen to add 10 MB.
    assert status_kb(pid, "VmRSS") - rss_warm < 16_000
    assert server.health()["status"] == "ok"


def test_audiosocket_call_is_named_by_its_uuid_and_ends_on_hangup(
    server: RunningServer, ports: Ports
) -> None:
    call_uuid = uuid.uuid4()

    async def scenario() -> object:
        async with CallWatcher(server.base_url) as watcher:
            await audiosocket_call("127.0.0.1", ports.audiosocket, call_uuid, _speech_8k())
            return await watcher.wait_ended(1, 15)

    log = asyncio.run(scenario())
    (started,) = log.started()
    assert started["call_id"] == str(call_uuid)
    assert started["transport"] == "audiosocket"
    assert started["codec"] == "slin"
    (ended,) = log.ended()
    assert ended["call_id"] == str(call_uuid)
    assert ended["reason"] == "hangup"
    assert log.finals(str(call_uuid))
    assert ended["statistics"]["frames_received"] >= 200


async def _closed_by_server(payload: bytes, port: int, wait_s: float, *, half_close: bool) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(payload)
    await writer.drain()
    if half_close:
        writer.write_eof()
    try:
        return await asyncio.wait_for(reader.read(), wait_s)  # b"": the server closed it
    finally:
        writer.close()


def test_bad_audiosocket_frames_end_only_their_own_call(
    server: RunningServer, ports: Ports
) -> None:
    uuid_frame = encode_frame(FrameKind.UUID, uuid.uuid4().bytes)
    audio = encode_frame(FrameKind.AUDIO, bytes(320))
    cases = {
        "length past the end": uuid_frame + audio + b"\x10\x01\x40" + bytes(10),
        "unknown kind": uuid_frame + audio + encode_frame(0x42, b"xx"),
        "audio before the uuid": audio,
        "bad uuid": encode_frame(FrameKind.UUID, b"short"),
        "half a frame, then a stall": uuid_frame + b"\x10\x01",
    }
    good_uuid = uuid.uuid4()

    async def scenario() -> object:
        async with CallWatcher(server.base_url) as watcher:
            good = asyncio.create_task(
                audiosocket_call("127.0.0.1", ports.audiosocket, good_uuid, _speech_8k())
            )
            for name, payload in cases.items():
                # A stalled frame is cut by the idle timeout; the others at once.
                answer = await _closed_by_server(
                    payload, ports.audiosocket, IDLE_MS / 1000 + 5, half_close="stall" not in name
                )
                assert answer == b"", name
            await good
            return await watcher.wait_for(
                lambda log: any(e["call_id"] == str(good_uuid) for e in log.ended()), 15
            )

    log = asyncio.run(scenario())
    good_end = next(e for e in log.ended() if e["call_id"] == str(good_uuid))
    assert good_end["reason"] == "hangup"
    assert log.finals(str(good_uuid))
    assert server.health()["status"] == "ok"


def test_calls_events_can_follow_one_call(server: RunningServer, ports: Ports) -> None:
    first, second = uuid.uuid4(), uuid.uuid4()

    async def scenario() -> tuple[object, object]:
        async with (
            CallWatcher(server.base_url) as everything,
            CallWatcher(server.base_url, str(second)) as one,
        ):
            port = ports.audiosocket
            await asyncio.gather(
                audiosocket_call("127.0.0.1", port, first, _speech_8k(1.5)),
                audiosocket_call("127.0.0.1", port, second, _speech_8k(1.5)),
            )
            await everything.wait_ended(2, 15)
            await one.wait_ended(1, 15)
            return everything.log, one.log

    everything, one = asyncio.run(scenario())
    assert {e["call_id"] for e in everything.events} == {str(first), str(second)}  # type: ignore[attr-defined]
    assert {e["call_id"] for e in one.events} == {str(second)}  # type: ignore[attr-defined]


def test_realtime_websocket_takes_g711(server: RunningServer) -> None:
    ulaw = pcm16_to_ulaw(_speech_8k())
    log = asyncio.run(
        run_session(
            ws_url(server.base_url, FAKE_STT),
            ulaw,
            8_000,
            commands_before=[{"type": "session.configure", "input_audio_format": "g711_ulaw"}],
            bytes_per_sample=1,
        )
    )
    updated = log.of("session.updated")[0]["config"]
    assert updated["input_audio_format"] == "g711_ulaw"
    assert updated["input_sample_rate"] == 8_000
    assert log.finals() and log.finals()[0].lower().startswith("alpha")


def test_g711_at_another_rate_is_refused_naming_the_field(server: RunningServer) -> None:
    async def scenario() -> dict[str, object]:
        async with websockets.connect(ws_url(server.base_url, FAKE_STT)) as ws:
            json.loads(await ws.recv())  # session.created
            await ws.send(
                json.dumps(
                    {
                        "type": "session.configure",
                        "input_audio_format": "g711_alaw",
                        "input_sample_rate": 16_000,
                    }
                )
            )
            answer: dict[str, object] = json.loads(await ws.recv())
            return answer

    error = asyncio.run(scenario())
    assert error["type"] == "error"
    assert error["param"] == "input_sample_rate"
    assert "8000" in str(error["message"])


def test_an_audiosocket_call_beyond_the_cap_is_refused_and_closed(
    server: RunningServer, ports: Ports
) -> None:
    async def open_call() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await asyncio.open_connection("127.0.0.1", ports.audiosocket)
        writer.write(encode_frame(FrameKind.UUID, uuid.uuid4().bytes))
        writer.write(encode_frame(FrameKind.AUDIO, bytes(320)))
        await writer.drain()
        return reader, writer

    async def scenario() -> tuple[bytes, int, object]:
        async with CallWatcher(server.base_url) as watcher:
            held = [await open_call() for _ in range(MAX_CALLS)]
            await watcher.wait_for(lambda log: len(log.started()) == MAX_CALLS, 10)
            reader, writer = await open_call()
            answer = await asyncio.wait_for(reader.read(), 10)  # closed by the server
            writer.close()
            live = len(await asyncio.to_thread(_calls, server))
            for _, held_writer in held:
                held_writer.write(encode_frame(FrameKind.HANGUP))
                await held_writer.drain()
            await watcher.wait_ended(MAX_CALLS + 1, 15)
            for _, held_writer in held:
                held_writer.close()
            return answer, live, watcher.log

    answer, live, log = asyncio.run(scenario())
    assert answer == b""
    assert live == MAX_CALLS
    reasons = sorted(e["reason"] for e in log.ended())  # type: ignore[attr-defined]
    assert reasons == ["hangup"] * MAX_CALLS + ["refused"]
    _wait_no_calls(server)


def test_l16_rtp_is_16khz_linear_pcm(server: RunningServer, ports: Ports) -> None:
    """Asterisk ExternalMedia's slin16: payload type 118, big-endian, 16 kHz."""
    samples, rate = read_wav(FIXTURES / "en_short.wav")
    assert rate == 16_000

    async def scenario() -> object:
        async with CallWatcher(server.base_url) as watcher:
            await send_rtp_call("127.0.0.1", ports.rtp, samples, "l16", ssrc=0x116)
            return await watcher.wait_ended(1, 15)

    log = asyncio.run(scenario())
    (started,) = log.started()  # type: ignore[attr-defined]
    assert (started["codec"], started["sample_rate"]) == ("l16", 16_000)
    (ended,) = log.ended()  # type: ignore[attr-defined]
    assert ended["reason"] == "idle_timeout"
    finals = log.finals(started["call_id"])  # type: ignore[attr-defined]
    # en_short.wav lasts 2.99 s: the fake engine's script, 3 words a second, from "alpha".
    assert finals and finals[0].lower().startswith("alpha bravo")


REPLY = "Hello there."  # the fake TTS: a 440 Hz tone, 0.05 s per character


def _tone_hz(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64)))
    return float(np.argmax(spectrum) * rate / samples.size)


async def _speak_into_the_call(watcher: CallWatcher, phone: RtpPhone | AudioSocketPhone) -> str:
    """Say something, wait for its final, answer it with ``tts.speak``; returns the call id."""
    phone.say(_speech_8k(1.5))
    await watcher.wait_for(lambda log: bool(log.started()), 10)
    call_id = str(watcher.log.started()[-1]["call_id"])
    await watcher.wait_for(lambda log: bool(log.finals(call_id)), 20)
    await watcher.send(type="tts.speak", call_id=call_id, text=REPLY, request_id="hi")
    await watcher.wait_for(lambda log: _of(log, call_id, "tts.speaking_end"), 20)
    return call_id


def _of(log: object, call_id: str, kind: str) -> list[dict[str, object]]:
    return [e for e in log.of_call(call_id) if e["type"] == kind]  # type: ignore[attr-defined]


def test_an_rtp_call_hears_the_reply_in_its_codec_paced_in_real_time(
    server: RunningServer, ports: Ports
) -> None:
    async def scenario() -> tuple[RtpPhone, object, str]:
        async with CallWatcher(server.base_url) as watcher:
            phone = await RtpPhone.call("127.0.0.1", ports.rtp, "pcma", ssrc=0xABBA)
            call_id = await _speak_into_the_call(watcher, phone)
            (end,) = _of(watcher.log, call_id, "tts.speaking_end")
            duration_s = int(end["duration_ms"]) / 1000  # type: ignore[call-overload]
            await asyncio.sleep(duration_s + 0.5)  # played in real time, after it was sent
            # Heard again once the reply has played: the session is no longer muted.
            finals = len(watcher.log.finals(call_id))
            phone.say(_speech_8k(1.5))
            await watcher.wait_for(lambda log: len(log.finals(call_id)) > finals, 20)
            await phone.hang_up()
            await watcher.wait_ended(1, 20)
            return phone, watcher.log, call_id

    phone, log, call_id = asyncio.run(scenario())
    (start,) = _of(log, call_id, "tts.speaking_start")
    (end,) = _of(log, call_id, "tts.speaking_end")
    assert (start["request_id"], start["sample_rate"], start["format"]) == ("hi", 8_000, "pcm16")
    assert (end["reason"], end["duration_ms"]) == ("done", round(len(REPLY) * 0.05 * 1000))
    packets = [p for _, p in phone.received]
    assert {p.payload_type for p in packets} == {8}  # PCMA, as the call came in
    assert len({p.ssrc for p in packets}) == 1
    assert packets[0].marker and not any(p.marker for p in packets[1:])
    sequences = [p.sequence for p in packets]
    assert [(b - a) & 0xFFFF for a, b in itertools.pairwise(sequences)] == [1] * (len(packets) - 1)
    stamps = [p.timestamp for p in packets]
    assert {(b - a) & 0xFFFFFFFF for a, b in itertools.pairwise(stamps)} == {160}
    assert {len(p.payload) for p in packets} == {160}  # 20 ms of A-law
    heard = phone.heard()
    assert len(packets) == -(-int(end["duration_ms"]) // 20)  # type: ignore[call-overload]
    assert abs(_tone_hz(heard, 8_000) - 440) < 10
    median_gap, span = spacing_ms([at for at, _ in phone.received])
    assert 15 <= median_gap <= 30, median_gap  # one packet every 20 ms, not a burst
    assert span >= 0.8 * (len(packets) - 1) * 20, span


def test_an_audiosocket_call_hears_the_reply_as_paced_slin_frames(
    server: RunningServer, ports: Ports
) -> None:
    async def scenario() -> tuple[AudioSocketPhone, object, str]:
        async with CallWatcher(server.base_url) as watcher:
            phone = await AudioSocketPhone.call("127.0.0.1", ports.audiosocket, uuid.uuid4())
            call_id = await _speak_into_the_call(watcher, phone)
            await asyncio.sleep(len(REPLY) * 0.05 + 0.5)
            await phone.hang_up()
            await watcher.wait_ended(1, 20)
            return phone, watcher.log, call_id

    phone, log, call_id = asyncio.run(scenario())
    (end,) = _of(log, call_id, "tts.speaking_end")
    frames = [(at, kind, payload) for at, kind, payload in phone.received]
    assert {kind for _, kind, _ in frames} == {FrameKind.AUDIO}
    assert {len(payload) for _, _, payload in frames} == {320}  # 20 ms of 8 kHz slin
    assert len(frames) * 20 >= int(end["duration_ms"])  # type: ignore[call-overload]
    assert abs(_tone_hz(phone.heard(), 8_000) - 440) < 10
    median_gap, span = spacing_ms([at for at, _, _ in frames])
    assert 15 <= median_gap <= 30, median_gap
    assert span >= 0.8 * (len(frames) - 1) * 20, span


def test_cancel_stops_a_call_s_reply_and_bad_commands_are_answered(
    server: RunningServer, ports: Ports
) -> None:
    async def scenario() -> tuple[RtpPhone, object, str, float, list[dict[str, object]]]:
        async with CallWatcher(server.base_url) as watcher:
            phone = await RtpPhone.call("127.0.0.1", ports.rtp, "pcmu", ssrc=0xCA11)
            phone.say(_speech_8k(1.5))
            await watcher.wait_for(lambda log: bool(log.started()), 10)
            call_id = str(watcher.log.started()[-1]["call_id"])
            long_text = "This reply goes on and on. " * 8  # about 11 s of tone
            await watcher.send(type="tts.speak", call_id=call_id, text=long_text, request_id="l")
            await watcher.wait_for(lambda log: len(phone.received) >= 25, 20)  # 0.5 s played
            await watcher.send(type="tts.cancel", call_id=call_id)
            await watcher.wait_for(lambda log: bool(_of(log, call_id, "tts.speaking_end")), 10)
            cancelled_at = time.monotonic()
            await asyncio.sleep(0.5)
            bad = [
                {"type": "tts.speak", "call_id": "call_nobody", "text": "Hi."},
                {"type": "tts.speak", "text": "Hi."},
                {"type": "tts.speak", "call_id": call_id, "text": ""},
                {"type": "tts.speak", "call_id": call_id, "text": "Hi.", "voice": "nobody"},
                {"type": "tts.cancel", "call_id": call_id, "request_id": "never"},
                {"type": "tts.dance", "call_id": call_id},
            ]
            for command in bad:
                await watcher.send(**command)
            await watcher.wait_for(
                lambda log: len([e for e in log.events if e["type"] == "error"]) >= len(bad), 10
            )
            await phone.hang_up()
            await watcher.wait_ended(1, 20)
            errors = [e for e in watcher.log.events if e["type"] == "error"]
            return phone, watcher.log, call_id, cancelled_at, errors

    phone, log, call_id, cancelled_at, errors = asyncio.run(scenario())
    (end,) = _of(log, call_id, "tts.speaking_end")
    assert (end["request_id"], end["reason"]) == ("l", "cancelled")
    after = [at for at, _ in phone.received if at > cancelled_at + 0.1]
    assert not after, f"{len(after)} packets played after the cancel"
    assert len(phone.received) * 20 < 5_000  # far less than the whole reply
    assert [(e.get("param"), e.get("call_id")) for e in errors] == [
        ("call_id", "call_nobody"),
        ("call_id", None),
        ("text", call_id),
        ("voice", call_id),
        ("request_id", call_id),
        (None, call_id),
    ]
    assert errors[-1]["code"] == "unknown_command"
    assert all(e["recoverable"] for e in errors)
    (ended,) = log.ended()
    assert ended["reason"] == "bye"
