"""Several workers per model (``THEO_WORKER__REPLICAS=2``) through a real `theo serve`.

The fake engine ends each batch transcript with ``pid<N>``, the worker process that served
it, so the tests see where every request went and compare it with /health's worker pids.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import websockets

from tests.helpers.fake import FAKE_STT, install_fake_stt, serving_fake
from tests.helpers.realtime import ws_url
from tests.helpers.server import FIXTURES, RunningServer, wait_for

SCRIPT = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima"
CLIP = (FIXTURES / "en_short.wav").read_bytes()
# en_short.wav lasts 2.99 s: 8 words at 3 words per second.
HEARD = SCRIPT.split()[:8]
_PID = re.compile(r"pid(\d+)")


def _serve(
    factory: pytest.TempPathFactory, name: str, env: dict[str, str]
) -> Iterator[RunningServer]:
    home = factory.mktemp(f"{name}-home")
    install_fake_stt(home, transcript=SCRIPT, reveal_pid=True, decode_delay_s=0.3)
    log_path = factory.mktemp(f"{name}-logs") / "serve.log"
    with serving_fake(home, log_path, extra_env={"THEO_WORKER__REPLICAS": "2", **env}) as server:
        yield server


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """Two workers of one model; a killed one is restarted after 1 s."""
    yield from _serve(tmp_path_factory, "pair", {"THEO_WORKER__RESTART_BACKOFF_S": "1"})


@pytest.fixture(scope="module")
def fragile_pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """Two workers of one model, neither restarted after a crash."""
    yield from _serve(tmp_path_factory, "fragile", {"THEO_WORKER__MAX_RESTARTS": "0"})


def _workers(server: RunningServer) -> list[dict[str, Any]]:
    return [w for w in server.health()["workers"] if w["model"] == FAKE_STT]


def _served_by(response: httpx.Response) -> int:
    """The pid of the worker that served a transcription, after checking its words."""
    assert response.status_code == 200, response.text
    text = response.json()["text"]
    match = _PID.search(text)
    assert match is not None, text
    assert text[: match.start()].split() == HEARD, text
    return int(match.group(1))


async def _transcribe_all(server: RunningServer, count: int) -> list[httpx.Response]:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=60) as client:
        return list(
            await asyncio.gather(
                *(
                    client.post(
                        "/v1/audio/transcriptions",
                        files={"file": ("clip.wav", CLIP, "audio/wav")},
                        data={"model": FAKE_STT},
                    )
                    for _ in range(count)
                )
            )
        )


def _transcribe(server: RunningServer) -> httpx.Response:
    with server.client(timeout=60) as client:
        return client.post(
            "/v1/audio/transcriptions",
            files={"file": ("clip.wav", CLIP, "audio/wav")},
            data={"model": FAKE_STT},
        )


def test_each_model_gets_two_workers_with_their_own_ids_ports_and_processes(
    pair: RunningServer,
) -> None:
    workers = _workers(pair)
    assert [w["id"] for w in workers] == [f"stt-{FAKE_STT}-1", f"stt-{FAKE_STT}-2"]
    assert [w["state"] for w in workers] == ["ready", "ready"]
    assert len({w["port"] for w in workers}) == 2
    assert len({w["pid"] for w in workers}) == 2
    with pair.client() as client:
        model = client.get(f"/v1/models/{FAKE_STT}").json()
    assert model["status"] == "ready"


def test_concurrent_requests_are_served_by_both_workers(pair: RunningServer) -> None:
    pids = {w["pid"] for w in _workers(pair)}
    responses = asyncio.run(_transcribe_all(pair, 6))
    served = [_served_by(r) for r in responses]
    assert set(served) == pids
    # Least-loaded routing: neither worker gets more than its share plus one.
    assert max(served.count(pid) for pid in pids) <= 4
    wait_for(
        lambda: all(w["active_requests"] == 0 for w in _workers(pair)), 10, "both workers idle"
    )


def test_batch_requests_avoid_the_worker_serving_a_live_session(pair: RunningServer) -> None:
    async def scenario() -> tuple[list[int], list[httpx.Response]]:
        async with websockets.connect(ws_url(pair.base_url, FAKE_STT)) as ws:
            assert json.loads(await ws.recv())["type"] == "session.created"
            await ws.send(bytes(640))
            live = [w["pid"] for w in _workers(pair) if w["active_streams"] == 1]
            return live, await _transcribe_all(pair, 3)

    wait_for(lambda: all(w["active_requests"] == 0 for w in _workers(pair)), 10, "idle")
    live, responses = asyncio.run(scenario())
    assert len(live) == 1, _workers(pair)
    # Three at once all go to the worker without the session, though it then has more
    # requests in flight (inside the session's worker, batch work would wait for its
    # decodes); by requests alone one of them would have joined the session.
    assert {_served_by(r) for r in responses} == {w["pid"] for w in _workers(pair)} - set(live)


def test_requests_go_to_the_other_worker_while_a_killed_one_restarts(pair: RunningServer) -> None:
    killed, survivor = _workers(pair)
    os.kill(killed["pid"], signal.SIGKILL)
    wait_for(lambda: _workers(pair)[0]["state"] in ("crashed", "starting"), 10, "the crash noticed")

    during: list[int] = []
    while (current := _workers(pair)[0])["state"] != "ready":
        during.append(_served_by(_transcribe(pair)))  # every one a 200, none a 5xx
        assert _workers(pair)[0]["restarts"] <= 1
    assert during, "no request was sent while the worker restarted"
    replacement = current["pid"]
    assert replacement not in (killed["pid"], survivor["pid"])
    assert set(during) <= {survivor["pid"], replacement}
    assert during[0] == survivor["pid"]
    assert current["restarts"] == killed["restarts"] + 1

    served = [_served_by(r) for r in asyncio.run(_transcribe_all(pair, 4))]
    assert set(served) == {survivor["pid"], replacement}


def test_a_worker_given_up_on_is_reported_and_its_twin_serves_alone(
    fragile_pair: RunningServer,
) -> None:
    first, second = _workers(fragile_pair)
    os.kill(first["pid"], signal.SIGKILL)
    gave_up = "crashed 1 times within 60 s; not restarting"
    wait_for(
        lambda: _workers(fragile_pair)[0]["last_error"] == gave_up, 10, "the first given up on"
    )
    health = fragile_pair.health()
    assert health["status"] == "degraded"
    reported = _workers(fragile_pair)
    assert [w["state"] for w in reported] == ["crashed", "ready"]
    assert reported[0]["restarts"] == 0
    assert [_served_by(_transcribe(fragile_pair)) for _ in range(3)] == [second["pid"]] * 3

    os.kill(second["pid"], signal.SIGKILL)
    wait_for(
        lambda: all(w["last_error"] == gave_up for w in _workers(fragile_pair)),
        10,
        "both given up on",
    )
    response = _transcribe(fragile_pair)
    assert response.status_code == 503
    assert response.headers["retry-after"]
    error = response.json()["error"]
    assert error["code"] == "model_unavailable"
    assert error["message"] == f"Model '{FAKE_STT}' is unavailable: {gave_up}."
