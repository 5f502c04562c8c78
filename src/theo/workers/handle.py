"""One supervised worker as the manager sees it: state machine, process and gRPC channel."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from theo.types import ModelType, SchedulerStats, WorkerState
from theo.wire.proto import stt_worker_pb2_grpc as pb_grpc
from theo.wire.proto import tts_worker_pb2_grpc as tts_pb_grpc

_LEGAL_TRANSITIONS: dict[WorkerState, frozenset[WorkerState]] = {
    WorkerState.STARTING: frozenset({WorkerState.READY, WorkerState.CRASHED, WorkerState.STOPPED}),
    WorkerState.READY: frozenset({WorkerState.BUSY, WorkerState.CRASHED, WorkerState.STOPPED}),
    WorkerState.BUSY: frozenset({WorkerState.READY, WorkerState.CRASHED, WorkerState.STOPPED}),
    WorkerState.CRASHED: frozenset({WorkerState.STARTING, WorkerState.STOPPED}),
    WorkerState.STOPPED: frozenset(),
}

_MAX_MESSAGE_BYTES = 1024 * 1024 * 1024


class IllegalTransitionError(RuntimeError):
    """A state change the worker state machine does not allow."""


@dataclass
class WorkerHandle:
    """A worker subprocess serving one model."""

    worker_id: str
    model_name: str
    model_dir: Path
    engine: str
    on_change: Callable[[WorkerHandle], None] | None = None
    port: int = 0
    process: asyncio.subprocess.Process | None = None
    channel: grpc.aio.Channel | None = None
    stub: pb_grpc.STTWorkerStub | None = None
    """The STT worker stub (speech-to-text workers only)."""
    tts_stub: tts_pb_grpc.TTSWorkerStub | None = None
    """The TTS worker stub (text-to-speech workers only)."""
    kind: ModelType = ModelType.STT
    """Which worker service the process speaks."""
    restart_times: deque[float] = field(default_factory=deque)
    restarts_total: int = 0
    active_requests: int = 0
    active_streams: int = 0
    """Of ``active_requests``, the realtime streams (sessions, calls)."""
    generation: int = 0
    last_error: str = ""
    gave_up: bool = False
    """Set by the manager when it stops restarting this worker: it will not come back."""
    device: str = ""
    compute_type: str = ""
    scheduler: SchedulerStats | None = None
    """An STT worker's scheduling figures, as of its last health probe."""
    started_at: float = field(default_factory=time.time)
    _state: WorkerState = WorkerState.STARTING
    _state_waiters: list[asyncio.Future[None]] = field(default_factory=list, repr=False)

    @property
    def state(self) -> WorkerState:
        """Current lifecycle state."""
        return self._state

    @property
    def pid(self) -> int | None:
        """PID of the current process, if any."""
        return self.process.pid if self.process is not None else None

    @property
    def routable(self) -> bool:
        """Whether requests may be sent to this worker now."""
        return self._state in (WorkerState.READY, WorkerState.BUSY)

    @property
    def connected(self) -> bool:
        """Whether a gRPC channel to the current process is open."""
        return self.channel is not None

    @property
    def retired(self) -> bool:
        """Whether this worker will serve no more requests (stopped, or given up on)."""
        return self.gave_up or self._state == WorkerState.STOPPED

    def transition(self, new: WorkerState) -> None:
        """Move to ``new``; illegal transitions fail loudly."""
        if new == self._state:
            return
        if new not in _LEGAL_TRANSITIONS[self._state]:
            raise IllegalTransitionError(f"{self.worker_id}: {self._state} -> {new} is illegal")
        self._state = new
        self._wake_waiters()
        if self.on_change is not None:
            self.on_change(self)

    def give_up(self, reason: str) -> None:
        """Mark a CRASHED worker as not coming back (the manager stopped restarting it)."""
        if self._state != WorkerState.CRASHED:
            raise IllegalTransitionError(f"{self.worker_id}: gave up while {self._state}")
        self.gave_up = True
        self.last_error = reason
        self._wake_waiters()
        if self.on_change is not None:
            self.on_change(self)

    def _wake_waiters(self) -> None:
        waiters, self._state_waiters = self._state_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def next_change(self) -> asyncio.Future[None]:
        """A future resolved at the next state change, or when the manager gives up.

        Cancel it once it is no longer awaited; it then leaves the waiter list.
        """
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._state_waiters.append(waiter)
        waiter.add_done_callback(self._forget_waiter)
        return waiter

    def _forget_waiter(self, waiter: asyncio.Future[None]) -> None:
        if waiter in self._state_waiters:
            self._state_waiters.remove(waiter)

    async def wait_for_change(self, timeout_s: float) -> None:
        """Return at the next state change (e.g. READY after a restart) or after ``timeout_s``.

        The manager giving up on the worker counts as a change.
        """
        waiter = self.next_change()
        try:
            await asyncio.wait({waiter}, timeout=timeout_s)
        finally:
            waiter.cancel()

    def open_channel(self) -> None:
        """Create the gRPC channel to the worker's current port."""
        self.channel = grpc.aio.insecure_channel(
            f"127.0.0.1:{self.port}",
            options=[
                ("grpc.max_receive_message_length", _MAX_MESSAGE_BYTES),
                ("grpc.max_send_message_length", _MAX_MESSAGE_BYTES),
            ],
        )
        if self.kind is ModelType.TTS:
            self.tts_stub = tts_pb_grpc.TTSWorkerStub(self.channel)
        else:
            self.stub = pb_grpc.STTWorkerStub(self.channel)

    async def close_channel(self) -> None:
        """Close the gRPC channel, failing any call still on it."""
        if self.channel is not None:
            await self.channel.close()
        self.channel = None
        self.stub = None
        self.tts_stub = None

    def begin_request(self, *, stream: bool = False) -> int:
        """Count a request in flight (READY -> BUSY); returns the process generation.

        ``stream``: a realtime stream, which routing keeps batch requests away from.
        """
        self.active_requests += 1
        self.active_streams += stream
        if self._state == WorkerState.READY:
            self.transition(WorkerState.BUSY)
        return self.generation

    def end_request(self, generation: int, *, stream: bool = False) -> None:
        """Count a request done (BUSY -> READY when idle).

        Requests begun on an earlier process (before a restart) are ignored, so a crash
        can never leave the counter wrong for the new process.
        """
        if generation != self.generation:
            return
        self.active_requests = max(0, self.active_requests - 1)
        if stream:
            self.active_streams = max(0, self.active_streams - 1)
        if self.active_requests == 0 and self._state == WorkerState.BUSY:
            self.transition(WorkerState.READY)
