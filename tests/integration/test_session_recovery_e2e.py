"""Crash recovery and the ring buffer's force commit, with a real worker and a real WebSocket.

A dedicated server: its worker gets SIGKILLed, and its sessions keep a 24 s ring buffer
so a long segment reaches the force-commit point (18 s, 6 s short of full) in a short test.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.asyncio.client import ClientConnection

from tests.conftest import TINY_EN
from tests.helpers.audio import continuous_speech
from tests.helpers.realtime import SessionLog, pcm16_of, run_session, ws_url
from tests.helpers.server import FIXTURES, RunningServer, start_server
from tests.helpers.wer import normalize, wer
from tests.integration.test_realtime_e2e import UTTERANCES

pytestmark = pytest.mark.e2e

RING_BUFFER_S = 24
FORCE_COMMIT_S = 18
"""Where a 24 s ring cuts: 6 s of headroom for the speech heard while the final decodes."""


@pytest.fixture(scope="module")
def session_server(
    theo_home: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """tiny.en only, with a 24 s session ring buffer (force commit at 18 s)."""
    models_dir = tmp_path_factory.mktemp("session-models")
    (models_dir / TINY_EN).symlink_to(theo_home / "models" / TINY_EN)
    running = start_server(
        theo_home,
        tmp_path_factory.mktemp("session-logs") / "serve.log",
        models_dir=models_dir,
        extra_env={"THEO_SESSION__RING_BUFFER_S": str(RING_BUFFER_S)},
    )
    try:
        running.wait_ready()
        yield running
    finally:
        running.stop()


def _metrics(server: RunningServer) -> str:
    with server.client() as client:
        return client.get("/metrics").text


def test_worker_killed_mid_utterance_loses_and_repeats_nothing(
    session_server: RunningServer,
) -> None:
    audio, rate = pcm16_of("en_librivox.wav")
    url = ws_url(session_server.base_url, TINY_EN)
    baseline = asyncio.run(run_session(url, audio, rate))
    old_pid = session_server.worker(TINY_EN)["pid"]
    killed_at: list[float] = []

    async def kill_mid_third_utterance(seconds: float, ws: ClientConnection) -> None:
        # The third utterance runs from 11.3 s to 16.6 s of the recording.
        if seconds >= 13.0 and not killed_at:
            os.kill(old_pid, signal.SIGKILL)
            killed_at.append(time.monotonic())

    started = time.monotonic()
    log = asyncio.run(run_session(url, audio, rate, on_progress=kill_mid_third_utterance))

    errors = log.of("error")
    assert len(errors) == 1, errors
    error = errors[0]
    assert error["code"] == "worker_crashed" and error["recoverable"] is True
    assert error["resume_segment_id"] == 3  # segments 1 and 2 were final before the kill
    # The broken stream is the detection: no health probe is waited for.
    detected_s = started + log.times[log.events.index(error)] - killed_at[0]
    print(f"crash detected and reported to the client after {detected_s * 1000:.0f} ms")
    assert detected_s < 1.0

    finals = log.of("transcript.final")
    assert [f["segment_id"] for f in finals] == [1, 2, 3, 4, 5], log.types()
    assert [f["segment_id"] for f in baseline.of("transcript.final")] == [1, 2, 3, 4, 5]
    assert wer(" ".join(baseline.finals()), " ".join(log.finals())) <= 0.15, log.finals()
    assert wer(" ".join(UTTERANCES), " ".join(log.finals())) <= 0.15, log.finals()
    # No text repeated: each final matches its own utterance, none holds another's words.
    for final, reference in zip(log.finals(), UTTERANCES, strict=True):
        assert wer(reference, final) <= 0.3, (reference, final)
    words = normalize(" ".join(log.finals())).split()
    assert len(words) <= len(normalize(" ".join(UTTERANCES)).split()) + 3
    # Segment 3 was interrupted and replayed: its events keep the protocol's order.
    third = [e["type"] for e in log.events if e.get("segment_id") == 3]
    assert third[0] == "vad.speech_start" and third[-2:] == ["transcript.final", "vad.speech_end"]
    assert log.events[-1]["reason"] == "client_close" and log.close_code == 1000

    worker = session_server.worker(TINY_EN)
    assert worker["pid"] != old_pid and worker["state"] in ("ready", "busy")
    metrics = _metrics(session_server)
    assert 'theo_stt_worker_recoveries_total{outcome="recovered"} 1.0' in metrics


def test_a_segment_longer_than_the_ring_buffer_is_force_committed(
    session_server: RunningServer,
) -> None:
    audio = continuous_speech(FIXTURES / "en_librivox.wav")
    seconds = len(audio) / 32_000
    assert seconds > RING_BUFFER_S * 1.5
    before = _metrics(session_server)
    log: SessionLog = asyncio.run(run_session(ws_url(session_server.base_url, TINY_EN), audio))
    after = _metrics(session_server)

    assert not log.of("session.frames_dropped") and not log.of("error"), log.types()
    finals = log.of("transcript.final")
    ids = [f["segment_id"] for f in finals]
    assert ids == list(range(1, len(ids) + 1)) and len(ids) >= 2, ids
    # The first segment was cut 6 s short of a full ring buffer, without a vad.speech_end...
    first = [e["type"] for e in log.events if e.get("segment_id") == 1]
    assert "vad.speech_end" not in first
    assert (FORCE_COMMIT_S - 1.5) * 1000 <= finals[0]["end_ms"] <= (FORCE_COMMIT_S + 1) * 1000
    # ...and the speech went on in the next segment from that very point.
    starts = {e["segment_id"]: e["timestamp_ms"] for e in log.of("vad.speech_start")}
    assert abs(starts[2] - FORCE_COMMIT_S * 1000) <= 500, starts
    # Nothing lost: all the words of both passes are there.
    reference = " ".join(UTTERANCES * 2)
    assert wer(reference, " ".join(log.finals())) <= 0.15, log.finals()
    assert 'theo_stt_segments_force_committed_total{reason="ring_buffer"}' in after
    assert _force_commits(after) >= _force_commits(before) + 1


def _force_commits(metrics: str) -> float:
    for line in metrics.splitlines():
        if line.startswith('theo_stt_segments_force_committed_total{reason="ring_buffer"}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0
