"""The routing rule: least-loaded ready worker, waiting for one, and workers given up on."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, cast

import pytest

from theo.errors import ModelUnavailableError
from theo.types import WorkerState
from theo.workers.handle import IllegalTransitionError, WorkerHandle
from theo.workers.routing import Router

GAVE_UP = "crashed 4 times within 60 s; not restarting"


class Workers:
    """A stand-in for the manager: a fixed list of workers for model ``m``."""

    def __init__(self, *workers: WorkerHandle) -> None:
        self.workers = list(workers)

    def workers_for(self, model_name: str) -> list[WorkerHandle]:
        return [w for w in self.workers if w.model_name == model_name]


def _worker(
    n: int, state: WorkerState = WorkerState.READY, *, active: int = 0, connected: bool = True
) -> WorkerHandle:
    handle = WorkerHandle(f"stt-m-{n}", "m", Path("/m"), "fake")
    if state is not WorkerState.STARTING:
        handle.transition(WorkerState.READY if state is not WorkerState.STOPPED else state)
    for _ in range(active):
        handle.begin_request()
    if state is WorkerState.CRASHED:
        handle.transition(WorkerState.CRASHED)
    if connected:
        handle.channel = cast(Any, object())  # only its presence matters to routing
    return handle


def _given_up(n: int) -> WorkerHandle:
    handle = _worker(n, WorkerState.CRASHED, connected=False)
    handle.give_up(GAVE_UP)
    return handle


class Stream:
    """A call tied to one process of a worker (what ``replacing`` is given)."""

    def __init__(self, worker: WorkerHandle) -> None:
        self.worker, self.generation = worker, worker.generation

    def served_by(self, worker: WorkerHandle) -> bool:
        return worker is self.worker and worker.generation == self.generation


def test_pick_takes_the_least_loaded_ready_worker() -> None:
    busy, idle = _worker(1, active=2), _worker(2, active=1)
    assert Router(Workers(busy, idle)).pick("m") is idle


def test_ties_rotate_so_sequential_requests_spread() -> None:
    first, second = _worker(1), _worker(2)
    router = Router(Workers(first, second))
    assert [router.pick("m") for _ in range(4)] == [first, second, first, second]


@pytest.mark.parametrize(
    "other",
    [
        lambda: _worker(1, WorkerState.STARTING),
        lambda: _worker(1, WorkerState.CRASHED),
        lambda: _worker(1, connected=False),
        lambda: _given_up(1),
    ],
)
def test_pick_skips_workers_that_cannot_serve(other: Any) -> None:
    ready = _worker(2, active=5)
    assert Router(Workers(other(), ready)).pick("m") is ready


@pytest.mark.parametrize(
    "workers",
    [
        [WorkerState.STARTING],
        [WorkerState.CRASHED],
        [WorkerState.CRASHED, "gave_up"],
        [WorkerState.STOPPED, WorkerState.STARTING],
    ],
)
def test_no_ready_worker_but_one_coming_says_retry_shortly(workers: list[Any]) -> None:
    handles = [
        _given_up(n) if state == "gave_up" else _worker(n, state, connected=False)
        for n, state in enumerate(workers)
    ]
    with pytest.raises(ModelUnavailableError) as raised:
        Router(Workers(*handles)).pick("m")
    assert raised.value.message == "Model 'm' is loading or restarting; retry shortly."
    assert raised.value.retryable


def test_every_worker_given_up_on_says_why_once() -> None:
    with pytest.raises(ModelUnavailableError) as raised:
        Router(Workers(_given_up(1), _given_up(2))).pick("m")
    assert raised.value.message == f"Model 'm' is unavailable: {GAVE_UP}."


def test_a_model_without_workers_is_unavailable() -> None:
    with pytest.raises(ModelUnavailableError) as raised:
        Router(Workers(_worker(1))).pick("other")
    assert raised.value.message == "Model 'other' is unavailable: no worker running."


def test_giving_up_is_only_for_a_crashed_worker() -> None:
    worker = _worker(1)
    with pytest.raises(IllegalTransitionError):
        worker.give_up(GAVE_UP)
    assert not worker.gave_up and not worker.retired


async def test_wait_ready_returns_at_once_when_a_worker_is_ready() -> None:
    assert await Router(Workers(_worker(1, WorkerState.STARTING), _worker(2))).wait_ready("m", 5)


async def test_wait_ready_returns_when_a_worker_becomes_ready() -> None:
    worker = _worker(1, WorkerState.STARTING)
    router = Router(Workers(worker))
    waiting = asyncio.create_task(router.wait_ready("m", 5))
    await asyncio.sleep(0)
    assert not waiting.done()
    worker.transition(WorkerState.READY)
    assert await asyncio.wait_for(waiting, 1)


async def test_wait_ready_times_out() -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert not await Router(Workers(_worker(1, WorkerState.STARTING))).wait_ready("m", 0.05)
    assert loop.time() - started >= 0.05


async def test_wait_ready_ignores_the_process_being_replaced_until_it_is_restarted() -> None:
    worker = _worker(1)
    broken = Stream(worker)
    router = Router(Workers(worker))
    # Its death is not noticed yet: the worker still looks ready, but not for this stream.
    assert not await router.wait_ready("m", 0.05, replacing=broken)
    waiting = asyncio.create_task(router.wait_ready("m", 5, replacing=broken))
    worker.transition(WorkerState.CRASHED)
    worker.transition(WorkerState.STARTING)
    worker.generation += 1
    await asyncio.sleep(0)
    assert not waiting.done()
    worker.transition(WorkerState.READY)
    assert await asyncio.wait_for(waiting, 1)


async def test_wait_ready_takes_another_worker_in_place_of_the_broken_one() -> None:
    broken_on, other = _worker(1), _worker(2)
    router = Router(Workers(broken_on, other))
    assert await router.wait_ready("m", 0.05, replacing=Stream(broken_on))


async def test_wait_ready_gives_up_at_once_when_no_worker_will_come_back() -> None:
    assert not await Router(Workers(_given_up(1), _given_up(2))).wait_ready("m", 60)
    assert not await Router(Workers()).wait_ready("m", 60)


async def test_wait_ready_ends_as_soon_as_the_manager_gives_up() -> None:
    worker = _worker(1, WorkerState.CRASHED, connected=False)
    router = Router(Workers(worker))
    waiting = asyncio.create_task(router.wait_ready("m", 60))
    await asyncio.sleep(0)
    assert not waiting.done()
    worker.give_up(GAVE_UP)
    assert await asyncio.wait_for(waiting, 1) is False
    assert worker.retired and worker.last_error == GAVE_UP


async def test_a_cancelled_wait_leaves_no_waiter_behind() -> None:
    worker = _worker(1, WorkerState.STARTING)
    waiting = asyncio.create_task(Router(Workers(worker)).wait_ready("m", 60))
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert worker._state_waiters == []


def test_batch_and_sessions_go_first_to_the_worker_with_the_fewest_live_sessions() -> None:
    with_session, with_batch = _worker(1), _worker(2, active=2)
    with_session.begin_request(stream=True)
    router = Router(Workers(with_session, with_batch))
    # Fewer requests in all, but a live session: the batch-only worker is chosen.
    assert router.pick("m") is with_batch
    generation = with_session.generation
    with_session.end_request(generation, stream=True)
    assert (with_session.active_streams, with_session.active_requests) == (0, 0)
    assert router.pick("m") is with_session


def test_a_broken_streams_process_is_avoided_while_another_worker_is_ready() -> None:
    # The stream broke because its process died, before the manager noticed: that worker
    # still looks ready (and least loaded, its stream gone), yet the stream reopens on the
    # other one; with no other, it may only try the same one again.
    dead, alive = _worker(1), _worker(2)
    alive.begin_request(stream=True)
    broken = Stream(dead)
    router = Router(Workers(dead, alive))
    assert router.pick("m") is dead
    assert router.pick("m", avoid=broken) is alive
    assert Router(Workers(dead)).pick("m", avoid=broken) is dead
