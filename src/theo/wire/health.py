"""Worker health on the wire: the Health answer of both worker kinds, both directions.

STT and TTS workers each have their own Health rpc and ``WorkerStatus`` enum; both answer
by the same rule (:func:`worker_status`), and the API process reads either answer as one
:class:`~theo.types.WorkerHealth`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from theo.types import HealthStatus, SchedulerStats, WorkerHealth
from theo.wire.proto import stt_worker_pb2 as stt_pb
from theo.wire.proto import tts_worker_pb2 as tts_pb

_NAMES: dict[HealthStatus, str] = {
    HealthStatus.LOADING: "WORKER_STATUS_LOADING",
    HealthStatus.READY: "WORKER_STATUS_READY",
    HealthStatus.BUSY: "WORKER_STATUS_BUSY",
    HealthStatus.ERROR: "WORKER_STATUS_ERROR",
}
"""Each status by its name in both protos' ``WorkerStatus`` enum."""
_FROM_STT = {stt_pb.WorkerStatus.Value(name): status for status, name in _NAMES.items()}
_FROM_TTS = {tts_pb.WorkerStatus.Value(name): status for status, name in _NAMES.items()}


def worker_status(load_error: str, loaded: bool, active_requests: int) -> HealthStatus:
    """What a worker answers: the same rule for both kinds.

    ERROR once loading failed, else LOADING until the model is in memory, then BUSY while
    requests run and READY when idle.
    """
    if load_error:
        return HealthStatus.ERROR
    if not loaded:
        return HealthStatus.LOADING
    return HealthStatus.BUSY if active_requests else HealthStatus.READY


def health_status(load_error: str, loaded: bool, active_requests: int) -> str:
    """The ``WorkerStatus`` a Health answer carries, by its name (see :func:`worker_status`)."""
    return _NAMES[worker_status(load_error, loaded, active_requests)]


def stt_health_to_proto(health: WorkerHealth) -> stt_pb.HealthResponse:
    """An STT worker's Health answer."""
    return stt_pb.HealthResponse(
        status=_NAMES[health.status],
        model_name=health.model_name,
        engine=health.engine,
        device=health.device,
        compute_type=health.compute_type,
        active_requests=health.active_requests,
        error=health.error,
        scheduler=_scheduler_to_proto(health.scheduler) if health.scheduler else None,
    )


def _scheduler_to_proto(stats: SchedulerStats) -> stt_pb.SchedulerStats:
    return stt_pb.SchedulerStats(**_scheduler_fields(stats))


def _scheduler_from_proto(message: stt_pb.HealthResponse) -> SchedulerStats | None:
    if not message.HasField("scheduler"):
        return None
    return SchedulerStats(**_scheduler_fields(message.scheduler))


def _scheduler_fields(stats: SchedulerStats | stt_pb.SchedulerStats) -> dict[str, Any]:
    """The figures by name: the dataclass and the message name them alike."""
    return {field.name: getattr(stats, field.name) for field in dataclasses.fields(SchedulerStats)}


def tts_health_to_proto(health: WorkerHealth) -> tts_pb.HealthResponse:
    """A TTS worker's Health answer (it has no compute type)."""
    return tts_pb.HealthResponse(
        status=_NAMES[health.status],
        model_name=health.model_name,
        engine=health.engine,
        device=health.device,
        active_requests=health.active_requests,
        error=health.error,
    )


def health_from_proto(message: stt_pb.HealthResponse | tts_pb.HealthResponse) -> WorkerHealth:
    """Either kind's Health answer; a status this side does not know reads as ERROR."""
    statuses = _FROM_STT if isinstance(message, stt_pb.HealthResponse) else _FROM_TTS
    return WorkerHealth(
        status=statuses.get(message.status, HealthStatus.ERROR),
        device=message.device,
        compute_type=getattr(message, "compute_type", ""),
        error=message.error,
        model_name=message.model_name,
        engine=message.engine,
        active_requests=message.active_requests,
        scheduler=(
            _scheduler_from_proto(message) if isinstance(message, stt_pb.HealthResponse) else None
        ),
    )
