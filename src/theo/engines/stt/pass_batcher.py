"""Partial passes of concurrent streams decoded together, in one batched engine call.

Every stream on a worker submits its partial passes here instead of to the executor
directly. Each submission queues the pass and one job on the realtime executor; the first
of those jobs to run takes every pass queued by then (up to ``max_batch``) and decodes
them in one call of the backend's ``decode_segments``, the later jobs find nothing left.
While the engine is idle a pass runs at once, alone, so nothing waits for a batch to
fill; while the engine is busy (with another pass or a final) passes of other streams
accumulate behind it and go together. Finals are not batched: they are urgent and run
alone, before queued passes.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future

import numpy as np
import numpy.typing as npt

from theo.engines.stt.backend import SegmentDecode, SegmentOptions, STTBackend
from theo.engines.stt.priority_executor import PriorityExecutor

Pass = tuple[npt.NDArray[np.float32], SegmentOptions]


class PassBatcher:
    """Collects the partial passes of a worker's streams into batched engine calls.

    Args:
        backend: the engine; ``decode_segments`` gets every batch of two or more.
        executor: the worker's realtime executor (one engine call at a time).
        max_batch: the most passes in one call; 1 turns batching off.
    """

    def __init__(self, backend: STTBackend, executor: PriorityExecutor, max_batch: int) -> None:
        self._backend = backend
        self._executor = executor
        self._max_batch = max(1, max_batch)
        self._queue: list[tuple[Pass, Future[SegmentDecode]]] = []
        self._lock = threading.Lock()
        self.calls = 0
        """Engine calls made for passes."""
        self.decodes = 0
        """Passes decoded by those calls (``decodes / calls``: the mean batch size)."""
        self.largest = 0
        """The largest batch so far."""

    def submit(
        self, audio: npt.NDArray[np.float32], options: SegmentOptions
    ) -> Future[SegmentDecode]:
        """Queue a partial pass; the future is cancelled-safe until the pass starts."""
        future: Future[SegmentDecode] = Future()
        with self._lock:
            self._queue.append(((audio, options), future))
        self._executor.submit(self._run)
        return future

    def _run(self) -> None:
        with self._lock:
            taken, self._queue = self._queue[: self._max_batch], self._queue[self._max_batch :]
        # A pass superseded (by its segment's final) while queued is dropped here.
        batch = [(item, future) for item, future in taken if future.set_running_or_notify_cancel()]
        if not batch:
            return
        with self._lock:
            self.calls += 1
            self.decodes += len(batch)
            self.largest = max(self.largest, len(batch))
        if len(batch) == 1:
            (audio, options), future = batch[0]
            try:
                future.set_result(self._backend.decode_segment(audio, options))
            except Exception as exc:  # the stream that asked gets it
                future.set_exception(exc)
            return
        try:
            results = self._backend.decode_segments([item for item, _ in batch])
        except Exception as exc:  # every stream of the batch gets it
            for _, future in batch:
                future.set_exception(exc)
            return
        for (_, future), result in zip(batch, results, strict=True):
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)
