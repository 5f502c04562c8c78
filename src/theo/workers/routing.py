"""Which worker serves a request: one rule for every kind of model.

A model may have several workers (``THEO_WORKER__REPLICAS``). A request goes to the
least-loaded one that is ready (READY or BUSY, its channel open); ties rotate, so
sequential requests spread over the workers too. When none is ready, the answer says
whether one is coming (loading, restarting) or none will (the manager gave up on every
one of them, or none runs).
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from typing import Protocol

from theo.errors import ModelUnavailableError
from theo.workers.handle import WorkerHandle


class WorkerSource(Protocol):
    """Where the router finds a model's workers (the :class:`WorkerManager`)."""

    def workers_for(self, model_name: str) -> list[WorkerHandle]:
        """The workers serving ``model_name``, in start order."""
        ...


class ServedBy(Protocol):
    """A call tied to one worker process (a realtime stream)."""

    def served_by(self, worker: WorkerHandle) -> bool:
        """Whether the call runs on ``worker``'s current process."""
        ...


def usable(worker: WorkerHandle) -> bool:
    """Whether requests may be sent to ``worker`` now."""
    return worker.routable and worker.connected


def _load(worker: WorkerHandle) -> tuple[int, int]:
    return worker.active_streams, worker.active_requests


class Router:
    """Picks a worker of a model for each request; waits for one to be ready."""

    def __init__(self, workers: WorkerSource) -> None:
        self._workers = workers
        self._turns: defaultdict[str, int] = defaultdict(int)

    def pick(self, model: str, *, avoid: ServedBy | None = None) -> WorkerHandle:
        """The least-loaded ready worker of ``model``: the fewest realtime streams first,
        then the fewest requests in all. Batch requests so go to the replicas serving the
        fewest live sessions (inside a worker, batch work waits for realtime work), and
        sessions spread over the replicas whatever batch work is queued.

        Raises:
            ModelUnavailableError: none is ready; the message says whether one is coming.
        """
        workers = self._workers.workers_for(model)
        ready = [w for w in workers if usable(w)]
        if avoid is not None:
            # A broken stream's process may be dead before the manager notices: the
            # stream reopens elsewhere when it can.
            ready = [w for w in ready if not avoid.served_by(w)] or ready
        if ready:
            least = min(_load(w) for w in ready)
            tied = [w for w in ready if _load(w) == least]
            turn = self._turns[model]
            self._turns[model] = turn + 1
            return tied[turn % len(tied)]
        if not all(w.retired for w in workers):
            raise ModelUnavailableError(f"Model '{model}' is loading or restarting; retry shortly.")
        reasons = dict.fromkeys(w.last_error for w in workers if w.last_error)
        detail = "; ".join(reasons) or "no worker running"
        raise ModelUnavailableError(f"Model '{model}' is unavailable: {detail}.")

    async def wait_ready(
        self, model: str, timeout_s: float, *, replacing: ServedBy | None = None
    ) -> bool:
        """Wait until a worker of ``model`` is ready.

        Args:
            model: the model's name.
            timeout_s: the longest wait.
            replacing: a broken call; the process that served it does not count, even
                while its death is not noticed yet.

        Returns:
            True once one is ready; False after ``timeout_s``, or at once when none will
            come back (none exists, or the manager gave up on all of them).
        """
        workers = self._workers.workers_for(model)
        deadline = time.monotonic() + timeout_s
        while True:
            if any(
                usable(w) and not (replacing is not None and replacing.served_by(w))
                for w in workers
            ):
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0 or all(w.retired for w in workers):
                return False
            changes = [w.next_change() for w in workers]
            try:
                await asyncio.wait(changes, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for change in changes:
                    change.cancel()
