"""Partial passes of concurrent streams batched on the realtime executor."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from theo.engines.stt.backend import SegmentDecode, SegmentOptions
from theo.engines.stt.pass_batcher import PassBatcher
from theo.engines.stt.priority_executor import PriorityExecutor

Audio = npt.NDArray[np.float32]


class Backend:
    """Decodes a pass as its audio length; records how passes were grouped."""

    def __init__(self, failing: float | None = None) -> None:
        self.calls: list[int] = []
        self._failing = failing

    def _decode(self, audio: Audio) -> SegmentDecode:
        if audio.size == self._failing:
            raise ValueError("engine failed")
        return SegmentDecode(str(audio.size), (), "en", 1.0)

    def decode_segment(self, audio: Audio, options: SegmentOptions) -> SegmentDecode:
        self.calls.append(1)
        return self._decode(audio)

    def decode_segments(
        self, passes: Sequence[tuple[Audio, SegmentOptions]]
    ) -> list[SegmentDecode | Exception]:
        self.calls.append(len(passes))
        results: list[SegmentDecode | Exception] = []
        for audio, _ in passes:
            try:
                results.append(self._decode(audio))
            except ValueError as exc:
                results.append(exc)
        return results


def _busy(executor: PriorityExecutor) -> threading.Event:
    """Hold the executor with another call until the returned event is set."""
    release, started = threading.Event(), threading.Event()

    def hold() -> None:
        started.set()
        release.wait(5)

    executor.submit(hold)
    assert started.wait(5)
    return release


def _audio(size: int) -> Audio:
    return np.zeros(size, dtype=np.float32)


@pytest.fixture
def executor() -> Any:
    executor = PriorityExecutor()
    yield executor
    executor.shutdown()


def test_an_idle_engine_decodes_a_pass_at_once_and_alone(executor: PriorityExecutor) -> None:
    backend = Backend()
    batcher = PassBatcher(backend, executor, max_batch=4)  # type: ignore[arg-type]
    assert batcher.submit(_audio(10), SegmentOptions()).result(5).text == "10"
    assert backend.calls == [1]
    assert (batcher.calls, batcher.decodes, batcher.largest) == (1, 1, 1)


def test_passes_queued_behind_other_work_go_together(executor: PriorityExecutor) -> None:
    backend = Backend()
    batcher = PassBatcher(backend, executor, max_batch=4)  # type: ignore[arg-type]
    release = _busy(executor)
    futures = [batcher.submit(_audio(n), SegmentOptions()) for n in (10, 20, 30, 40, 50)]
    futures[1].cancel()  # superseded by its segment's final while queued
    release.set()
    assert [f.result(5).text for f in (futures[0], *futures[2:])] == ["10", "30", "40", "50"]
    # The first four queued went in one call (the cancelled one dropped), the fifth alone.
    assert backend.calls == [3, 1]
    assert (batcher.calls, batcher.decodes, batcher.largest) == (2, 4, 3)


def test_one_failing_pass_fails_alone(executor: PriorityExecutor) -> None:
    backend = Backend(failing=20)
    batcher = PassBatcher(backend, executor, max_batch=4)  # type: ignore[arg-type]
    release = _busy(executor)
    ok, failing = (batcher.submit(_audio(n), SegmentOptions()) for n in (10, 20))
    release.set()
    assert ok.result(5).text == "10"
    with pytest.raises(ValueError, match="engine failed"):
        failing.result(5)


def test_a_batch_of_one_is_batching_off(executor: PriorityExecutor) -> None:
    backend = Backend()
    batcher = PassBatcher(backend, executor, max_batch=1)  # type: ignore[arg-type]
    release = _busy(executor)
    futures = [batcher.submit(_audio(n), SegmentOptions()) for n in (10, 20, 30)]
    release.set()
    assert [f.result(5).text for f in futures] == ["10", "20", "30"]
    assert backend.calls == [1, 1, 1]
