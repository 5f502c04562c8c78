"""Ask a worker of any kind how it is: one Health call, answered in one shape.

STT and TTS workers speak different gRPC services, each with its own Health rpc; the
manager supervises both the same way, so either answer is read as a
:class:`~theo.types.WorkerHealth`.
"""

from __future__ import annotations

import grpc

from theo.types import WorkerHealth
from theo.wire.health import health_from_proto
from theo.wire.proto import stt_worker_pb2 as stt_pb
from theo.wire.proto import tts_worker_pb2 as tts_pb
from theo.workers.handle import WorkerHandle


async def probe(handle: WorkerHandle, timeout_s: float) -> WorkerHealth | None:
    """One Health call; ``None`` when the worker does not answer (or has no channel)."""
    try:
        if handle.stub is not None:
            return health_from_proto(
                await handle.stub.Health(stt_pb.HealthRequest(), timeout=timeout_s)
            )
        if handle.tts_stub is not None:
            return health_from_proto(
                await handle.tts_stub.Health(tts_pb.HealthRequest(), timeout=timeout_s)
            )
    except grpc.aio.AioRpcError:
        return None
    return None
