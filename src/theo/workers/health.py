"""Ask a worker of any kind how it is: one Health call, answered in one shape.

STT and TTS workers speak different gRPC services, each with its own Health rpc; the
manager supervises both the same way, so the answers are mapped to :class:`WorkerHealth`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import grpc

from theo.wire.proto import stt_worker_pb2 as stt_pb
from theo.wire.proto import tts_worker_pb2 as tts_pb
from theo.workers.handle import WorkerHandle


class HealthStatus(enum.StrEnum):
    """What a worker says about itself."""

    LOADING = "loading"
    READY = "ready"
    BUSY = "busy"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class WorkerHealth:
    """A worker's answer to a Health probe."""

    status: HealthStatus
    device: str = ""
    compute_type: str = ""
    error: str = ""


# Both protos number their WorkerStatus values alike (LOADING=0 ... ERROR=3).
_STATUSES = {
    0: HealthStatus.LOADING,
    1: HealthStatus.READY,
    2: HealthStatus.BUSY,
    3: HealthStatus.ERROR,
}


async def probe(handle: WorkerHandle, timeout_s: float) -> WorkerHealth | None:
    """One Health call; ``None`` when the worker does not answer (or has no channel)."""
    try:
        if handle.stub is not None:
            stt = await handle.stub.Health(stt_pb.HealthRequest(), timeout=timeout_s)
            return WorkerHealth(
                _STATUSES.get(stt.status, HealthStatus.ERROR),
                stt.device,
                stt.compute_type,
                stt.error,
            )
        if handle.tts_stub is not None:
            tts = await handle.tts_stub.Health(tts_pb.HealthRequest(), timeout=timeout_s)
            return WorkerHealth(
                _STATUSES.get(tts.status, HealthStatus.ERROR), tts.device, "", tts.error
            )
    except grpc.aio.AioRpcError:
        return None
    return None
