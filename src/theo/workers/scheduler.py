"""The scheduler interface routes use; a priority scheduler can replace the simple one."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Protocol

from theo.types import BatchResult, DecodedSegment, TranscribeRequest
from theo.workers.stt_stream import WorkerStream


class Scheduler(Protocol):
    """Routes a request to a worker of its model and returns the engine's result."""

    async def transcribe(self, request: TranscribeRequest) -> BatchResult:
        """Run a batch transcription or translation.

        Cancelling the awaiting task cancels the call in the worker.

        Raises:
            ModelUnavailableError: no worker of the model is ready (loading/restarting).
            WorkerCrashError: the worker died during the request.
            WorkerTimeoutError: the worker did not answer in time.
            InferenceError: the engine failed.
        """
        ...

    def transcribe_segments(
        self, request: TranscribeRequest
    ) -> AsyncGenerator[DecodedSegment | BatchResult, None]:
        """Run a batch transcription, yielding each segment as it is decoded, then the
        whole result. Closing the iterator cancels the call in the worker.

        Raises:
            The errors of :meth:`transcribe`.
        """
        ...

    def open_stream(
        self, model: str, session_id: str, *, avoid: WorkerStream | None = None
    ) -> WorkerStream:
        """Open a realtime transcription stream on a ready worker of ``model``; not on
        ``avoid``'s process (a broken stream's) while another one is ready.

        Raises:
            ModelUnavailableError: no worker of the model is ready.
        """
        ...

    async def wait_ready(
        self, model: str, timeout_s: float, *, replacing: WorkerStream | None = None
    ) -> bool:
        """Wait until a worker of ``model`` is ready (e.g. restarted after a crash).

        With ``replacing`` (a broken stream), the process that served it does not count,
        even while its death is not noticed yet. Returns False after ``timeout_s``, or at
        once when no worker of the model will come back (none exists, or all gave up).
        """
        ...
