"""RealtimeFirst and BatchControl: a batch engine call waits for realtime work, ages, and
stops once cancelled."""

from __future__ import annotations

import threading
import time

import pytest

from theo.engines.stt.backend import BatchControl, CancelledByClient
from theo.engines.stt.priority_executor import PriorityExecutor
from theo.engines.stt.realtime_first import RealtimeFirst


def _checkpoint_in_thread(control: BatchControl) -> tuple[threading.Thread, list[str]]:
    outcome: list[str] = []

    def run() -> None:
        try:
            control.checkpoint()
            outcome.append("ran")
        except CancelledByClient:
            outcome.append("cancelled")

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def test_a_batch_call_runs_at_once_when_no_realtime_work_is_pending() -> None:
    realtime = PriorityExecutor()
    turns = RealtimeFirst(realtime, max_wait_s=30)
    BatchControl(turns.wait_turn).checkpoint()
    assert turns.waited == 0
    realtime.shutdown()


def test_a_batch_call_waits_until_the_realtime_work_is_done() -> None:
    realtime = PriorityExecutor()
    turns = RealtimeFirst(realtime, max_wait_s=30)
    release = threading.Event()
    order: list[str] = []
    realtime.submit(lambda: (release.wait(5), order.append("partial")))
    realtime.submit_urgent(order.append, "final")
    thread, outcome = _checkpoint_in_thread(BatchControl(turns.wait_turn))
    time.sleep(0.1)
    assert outcome == []  # still waiting: realtime work is running and queued
    release.set()
    thread.join(5)
    assert outcome == ["ran"] and sorted(order) == ["final", "partial"]
    assert turns.waited == 1 and turns.aged == 0
    realtime.shutdown()


def test_a_batch_call_waiting_longer_than_max_wait_runs_anyway() -> None:
    realtime = PriorityExecutor()
    turns = RealtimeFirst(realtime, max_wait_s=0.1)
    release = threading.Event()
    realtime.submit(release.wait, 5)  # realtime work that never ends in time
    thread, outcome = _checkpoint_in_thread(BatchControl(turns.wait_turn))
    thread.join(5)
    assert outcome == ["ran"]
    assert turns.waited == 1 and turns.aged == 1 and turns.wait_s >= 0.1
    release.set()
    realtime.shutdown()


def test_a_cancelled_batch_request_stops_at_its_next_checkpoint_even_while_waiting() -> None:
    realtime = PriorityExecutor()
    turns = RealtimeFirst(realtime, max_wait_s=30)
    release = threading.Event()
    realtime.submit(release.wait, 5)
    control = BatchControl(turns.wait_turn)
    thread, outcome = _checkpoint_in_thread(control)
    time.sleep(0.05)
    control.set()
    thread.join(5)
    assert outcome == ["cancelled"] and turns.aged == 0
    assert control.cancelled_at is not None
    with pytest.raises(CancelledByClient):
        control.checkpoint()
    release.set()
    realtime.shutdown()


def test_with_two_lanes_a_batch_call_takes_the_lane_a_running_pass_leaves_free() -> None:
    realtime = PriorityExecutor(lanes=2)
    turns = RealtimeFirst(realtime, max_wait_s=30)
    release = threading.Event()
    started = threading.Semaphore(0)

    def busy_pass() -> None:
        started.release()
        release.wait(5)

    realtime.submit(busy_pass)  # one lane decoding a pass, the other free
    assert started.acquire(timeout=5)
    BatchControl(turns.wait_turn).checkpoint()
    assert turns.waited == 0

    realtime.submit(busy_pass)  # both lanes busy now
    assert started.acquire(timeout=5)
    thread, outcome = _checkpoint_in_thread(BatchControl(turns.wait_turn))
    time.sleep(0.1)
    assert outcome == []
    release.set()
    thread.join(5)
    assert outcome == ["ran"] and turns.waited == 1 and turns.aged == 0
    realtime.shutdown()


def test_batch_calls_holding_lanes_keep_other_batch_calls_waiting() -> None:
    realtime = PriorityExecutor(lanes=2)
    turns = RealtimeFirst(realtime, max_wait_s=30)
    first, second = (BatchControl(turns.wait_turn, turns.holding) for _ in range(2))
    with first.engine_call():  # one lane: a batch call of another request
        with second.engine_call():  # the second lane is free: it runs too
            assert turns.waited == 0
            third = BatchControl(turns.wait_turn, turns.holding)
            waiting: list[str] = []

            def call() -> None:
                with third.engine_call():
                    waiting.append("ran")

            thread = threading.Thread(target=call)
            thread.start()
            time.sleep(0.1)
            assert waiting == []  # both lanes held
        thread.join(5)
        assert waiting == ["ran"] and turns.waited == 1
    assert first.first_call_at is not None and first.first_call_at >= first.created_at
    realtime.shutdown()


def test_a_cancelled_request_makes_no_further_engine_call() -> None:
    realtime = PriorityExecutor()
    turns = RealtimeFirst(realtime, max_wait_s=30)
    control = BatchControl(turns.wait_turn, turns.holding)
    control.set()
    with pytest.raises(CancelledByClient), control.engine_call():
        pytest.fail("the engine call ran")
    assert control.first_call_at is None
    realtime.shutdown()
