"""Two worker replicas of tiny.en (``THEO_WORKER__REPLICAS=2``) with real speech.

Concurrent sessions spread over both processes; when one replica is SIGKILLed mid
utterance, only its session recovers, on the surviving replica, and neither session
loses or repeats a final. The server's lag warning is 1 ms, so finals that come later
than that after their segment ended are told with ``session.lagging``. Partial passes of
concurrent sessions are batched (``THEO_SCHEDULER__MAX_PASS_BATCH=4``).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.asyncio.client import ClientConnection

from tests.conftest import TINY_EN
from tests.helpers.realtime import SessionLog, pcm16_of, run_session, ws_url
from tests.helpers.server import RunningServer, start_server, wait_for
from tests.helpers.wer import normalize, wer
from tests.integration.test_realtime_e2e import UTTERANCES

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def replicas_server(
    theo_home: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """tiny.en only, two worker processes (a killed one comes back after 5 s), and a
    1 ms lag warning, and partial passes batched (up to 4)."""
    models_dir = tmp_path_factory.mktemp("replica-models")
    (models_dir / TINY_EN).symlink_to(theo_home / "models" / TINY_EN)
    running = start_server(
        theo_home,
        tmp_path_factory.mktemp("replica-logs") / "serve.log",
        models_dir=models_dir,
        extra_env={
            "THEO_WORKER__REPLICAS": "2",
            "THEO_WORKER__RESTART_BACKOFF_S": "5",
            "THEO_WORKER__HEALTH_INTERVAL_S": "1",
            "THEO_SESSION__LAG_WARNING_S": "0.001",
            "THEO_SCHEDULER__MAX_PASS_BATCH": "4",
        },
    )
    try:
        running.wait_ready()
        yield running
    finally:
        running.stop()


def _workers(server: RunningServer) -> list[dict[str, object]]:
    return [w for w in server.health()["workers"] if w["model"] == TINY_EN]


def test_two_sessions_use_both_replicas_and_a_killed_one_moves_its_session(
    replicas_server: RunningServer,
) -> None:
    workers = _workers(replicas_server)
    assert len(workers) == 2 and len({w["pid"] for w in workers}) == 2, workers
    audio, rate = pcm16_of("en_librivox.wav")
    url = ws_url(replicas_server.base_url, TINY_EN)
    busy: list[list[dict[str, object]]] = []
    killed: list[int] = []

    async def kill_one_replica(seconds: float, ws: ClientConnection) -> None:
        # The third utterance runs from 11.3 s to 16.6 s of the recording.
        if seconds >= 13.0 and not killed:
            busy.append(_workers(replicas_server))
            killed.append(int(str(busy[0][0]["pid"])))
            os.kill(killed[0], signal.SIGKILL)

    async def both() -> list[SessionLog]:
        return list(
            await asyncio.gather(
                run_session(url, audio, rate, on_progress=kill_one_replica),
                run_session(url, audio, rate),
            )
        )

    logs = asyncio.run(both())

    # While both sessions streamed, each replica served one of them.
    assert [w["active_requests"] for w in busy[0]] == [1, 1], busy
    crashed = [log for log in logs if log.of("error")]
    assert len(crashed) == 1, [log.of("error") for log in logs]
    error = crashed[0].of("error")[0]
    assert error["code"] == "worker_crashed" and error["recoverable"] is True
    for log in logs:
        finals = log.of("transcript.final")
        assert [f["segment_id"] for f in finals] == [1, 2, 3, 4, 5], log.types()
        assert wer(" ".join(UTTERANCES), " ".join(log.finals())) <= 0.15, log.finals()
        words = normalize(" ".join(log.finals())).split()
        assert len(words) <= len(normalize(" ".join(UTTERANCES)).split()) + 3
        assert log.events[-1]["reason"] == "client_close" and log.close_code == 1000
    # The killed replica was replaced by a new process; the other one never stopped.
    after = {w["pid"] for w in _workers(replicas_server)}
    assert killed[0] not in after and int(str(busy[0][1]["pid"])) in after


def test_late_finals_are_told_with_session_lagging_and_counted(
    replicas_server: RunningServer,
) -> None:
    audio, rate = pcm16_of("en_short.wav")
    committed: list[float] = []

    async def commit_mid_utterance(seconds: float, ws: ClientConnection) -> None:
        # A commit mid speech ends the segment where no early final was decoded: its
        # final takes a decode, far longer than the 1 ms warning, while frames still come.
        if seconds >= 1.0 and not committed:
            committed.append(seconds)
            await ws.send(json.dumps({"type": "input_audio_buffer.commit"}))

    url = ws_url(replicas_server.base_url, TINY_EN)
    log = asyncio.run(run_session(url, audio, rate, on_progress=commit_mid_utterance))

    lagging = log.of("session.lagging")
    assert lagging and lagging[0]["segment_id"] == 1, log.types()
    for event in lagging:
        segment = event["segment_id"]
        kinds = [e["type"] for e in log.events if e.get("segment_id") == segment]
        assert kinds.index("session.lagging") < kinds.index("transcript.final"), kinds
        assert event["lag_ms"] >= 1 and "falling behind real time" in event["message"]
    assert "young man" in " ".join(log.finals()).lower()
    with replicas_server.client() as client:
        metrics = client.get("/metrics").text
    count = next(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("theo_stt_sessions_lagging_total ")
    )
    assert count >= len(lagging)
    # Both replicas report their scheduling figures (from their health probes).
    for worker in (f"stt-{TINY_EN}-1", f"stt-{TINY_EN}-2"):
        assert f'priority="realtime",worker="{worker}"' in metrics, worker
        assert f'theo_scheduler_batch_waits_total{{model="{TINY_EN}",worker="{worker}"}}' in metrics


def test_concurrent_sessions_have_their_partial_passes_decoded_in_batches(
    replicas_server: RunningServer,
) -> None:
    audio, rate = pcm16_of("en_librivox.wav")
    first_utterance = audio[: round(7.1 * rate) * 2]

    async def six() -> list[SessionLog]:
        url = ws_url(replicas_server.base_url, TINY_EN)
        return await asyncio.gather(*(run_session(url, first_utterance, rate) for _ in range(6)))

    logs = asyncio.run(six())
    for log in logs:
        assert wer(UTTERANCES[0], " ".join(log.finals())) <= 0.2, log.finals()
    # On a loaded machine a stream's passes can be too late to agree before its final
    # (seen once with other work on both cores); most streams still show partials.
    with_partials = [log for log in logs if log.of("transcript.partial")]
    assert len(with_partials) >= 4, [log.types() for log in logs]

    def largest_batch() -> float:
        return max(replicas_server.worker_metrics("theo_batch_size_max", TINY_EN), default=0.0)

    # Passes of the streams (three on each replica) queued behind each other went in
    # shared engine calls (read from the workers' next health probe).
    wait_for(lambda: largest_batch() > 1, 15, "a batch of partial passes in the metrics")
