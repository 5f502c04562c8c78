"""PriorityExecutor: urgent calls overtake queued ones; order within a priority; shutdown."""

from __future__ import annotations

import threading

import pytest

from theo.engines.stt.priority_executor import PriorityExecutor


def test_urgent_calls_run_before_queued_normal_calls_in_submission_order() -> None:
    executor = PriorityExecutor()
    gate = threading.Event()
    ran: list[str] = []
    blocker = executor.submit(gate.wait, 5)  # occupies the thread while the queue fills
    normal = [executor.submit(ran.append, f"partial-{i}") for i in range(3)]
    urgent = [executor.submit_urgent(ran.append, f"final-{i}") for i in range(2)]
    gate.set()
    for future in [blocker, *normal, *urgent]:
        future.result(timeout=5)
    executor.shutdown()

    assert ran == ["final-0", "final-1", "partial-0", "partial-1", "partial-2"]


def test_cancelled_queued_calls_never_run_and_errors_reach_the_future() -> None:
    executor = PriorityExecutor()
    gate = threading.Event()
    ran: list[int] = []
    executor.submit(gate.wait, 5)
    dropped = executor.submit(ran.append, 1)
    assert dropped.cancel()
    failing = executor.submit(int, "not a number")
    gate.set()

    with pytest.raises(ValueError, match="invalid literal"):
        failing.result(timeout=5)
    executor.shutdown()
    assert ran == []


def test_shutdown_cancels_queued_work_on_request_and_refuses_new_work() -> None:
    executor = PriorityExecutor()
    gate = threading.Event()
    executor.submit(gate.wait, 5)
    queued = executor.submit(str, 1)
    executor.shutdown(wait=False, cancel_futures=True)
    gate.set()

    assert queued.cancelled()
    with pytest.raises(RuntimeError, match="after shutdown"):
        executor.submit(str, 2)


def test_wait_idle_is_true_only_when_nothing_is_queued_or_running() -> None:
    executor = PriorityExecutor()
    assert executor.wait_idle(0)
    gate = threading.Event()
    running = executor.submit(gate.wait, 5)
    queued = executor.submit(int, "1")
    assert not executor.wait_idle(0.05)
    gate.set()
    assert executor.wait_idle(5)
    assert running.result(timeout=1) is True and queued.result(timeout=1) == 1
    executor.shutdown()


def test_two_lanes_run_two_calls_at_once_and_an_urgent_call_takes_the_free_one() -> None:
    executor = PriorityExecutor(lanes=2)
    both_running = threading.Barrier(2, timeout=5)
    # Each call waits for the other: they can only finish if they run side by side.
    first = executor.submit(both_running.wait)
    second = executor.submit(both_running.wait)
    assert {first.result(timeout=5), second.result(timeout=5)} == {0, 1}

    gate = threading.Event()
    long_pass = executor.submit(gate.wait, 5)  # one lane busy, as with a pass in flight
    final = executor.submit_urgent(str, "final")
    assert final.result(timeout=5) == "final"
    assert not long_pass.done()
    gate.set()
    executor.shutdown()


def test_a_free_lane_is_one_with_nothing_queued_for_it() -> None:
    executor = PriorityExecutor(lanes=1)
    gate = threading.Event()
    executor.submit(gate.wait, 5)
    assert not executor.wait_free_lane(0.05)
    executor.set_lanes(2)
    assert executor.lanes == 2
    assert executor.wait_free_lane(5)
    second_gate = threading.Event()
    executor.submit(second_gate.wait, 5)
    assert not executor.wait_free_lane(0.05)
    gate.set()
    second_gate.set()
    assert executor.wait_idle(5)
    executor.shutdown()
