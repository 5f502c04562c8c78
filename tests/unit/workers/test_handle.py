from __future__ import annotations

from pathlib import Path

import pytest

from theo.types import WorkerState
from theo.workers.handle import IllegalTransitionError, WorkerHandle


def _handle(changes: list[WorkerState]) -> WorkerHandle:
    return WorkerHandle(
        "stt-m", "m", Path("/m"), "faster-whisper", on_change=lambda h: changes.append(h.state)
    )


def test_lifecycle_transitions_are_reported() -> None:
    changes: list[WorkerState] = []
    handle = _handle(changes)
    handle.transition(WorkerState.READY)
    generation = handle.begin_request()
    assert handle.state == WorkerState.BUSY
    handle.end_request(generation)
    handle.transition(WorkerState.CRASHED)
    handle.transition(WorkerState.STARTING)
    handle.transition(WorkerState.STOPPED)
    assert changes == [
        WorkerState.READY,
        WorkerState.BUSY,
        WorkerState.READY,
        WorkerState.CRASHED,
        WorkerState.STARTING,
        WorkerState.STOPPED,
    ]


@pytest.mark.parametrize(
    ("path", "illegal"),
    [
        ([], WorkerState.BUSY),
        ([WorkerState.READY], WorkerState.STARTING),
        ([WorkerState.STOPPED], WorkerState.STARTING),
        ([WorkerState.CRASHED], WorkerState.READY),
    ],
)
def test_illegal_transitions_fail_loudly(path: list[WorkerState], illegal: WorkerState) -> None:
    handle = _handle([])
    for state in path:
        handle.transition(state)
    with pytest.raises(IllegalTransitionError):
        handle.transition(illegal)


def test_requests_from_a_previous_process_are_ignored() -> None:
    handle = _handle([])
    handle.transition(WorkerState.READY)
    stale = handle.begin_request()
    handle.transition(WorkerState.CRASHED)
    handle.transition(WorkerState.STARTING)
    handle.generation += 1
    handle.active_requests = 0
    handle.transition(WorkerState.READY)
    current = handle.begin_request()
    handle.end_request(stale)
    assert handle.state == WorkerState.BUSY and handle.active_requests == 1
    handle.end_request(current)
    assert handle.state == WorkerState.READY and handle.active_requests == 0
