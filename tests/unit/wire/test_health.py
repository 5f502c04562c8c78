"""Both worker kinds answer Health alike, and the API process reads either answer."""

from __future__ import annotations

import pytest

from theo.types import HealthStatus, SchedulerStats, WorkerHealth
from theo.wire.health import (
    health_from_proto,
    stt_health_to_proto,
    tts_health_to_proto,
    worker_status,
)
from theo.wire.proto import stt_worker_pb2, tts_worker_pb2


@pytest.mark.parametrize("status", list(HealthStatus))
def test_an_stt_answer_round_trips(status: HealthStatus) -> None:
    health = WorkerHealth(
        status=status,
        device="cuda",
        compute_type="float16",
        error="no weights" if status is HealthStatus.ERROR else "",
        model_name="faster-whisper-base",
        engine="faster-whisper",
        active_requests=2,
    )
    assert health_from_proto(stt_health_to_proto(health)) == health


def test_an_stt_answer_carries_the_scheduler_figures() -> None:
    stats = SchedulerStats(
        realtime_queued=3,
        batch_queued=1,
        batch_calls_waited=7,
        batch_calls_aged=2,
        batch_wait_seconds=1.5,
        cancels=4,
        cancel_latency_seconds=0.25,
        pass_calls=10,
        pass_decodes=25,
        largest_pass_batch=4,
    )
    health = WorkerHealth(status=HealthStatus.BUSY, active_requests=4, scheduler=stats)
    assert health_from_proto(stt_health_to_proto(health)) == health


@pytest.mark.parametrize("status", list(HealthStatus))
def test_a_tts_answer_round_trips_without_a_compute_type(status: HealthStatus) -> None:
    health = WorkerHealth(status, device="cpu", model_name="piper", engine="piper")
    assert health_from_proto(tts_health_to_proto(health)) == health


def test_both_protos_number_the_statuses_alike() -> None:
    names = stt_worker_pb2.WorkerStatus.keys()
    assert names == tts_worker_pb2.WorkerStatus.keys()
    for name in names:
        assert stt_worker_pb2.WorkerStatus.Value(name) == tts_worker_pb2.WorkerStatus.Value(name)


def test_a_status_this_side_does_not_know_reads_as_error() -> None:
    answer = stt_worker_pb2.HealthResponse()
    answer.ParseFromString(b"\x08\x09")  # status = 9, from a newer worker
    assert health_from_proto(answer).status is HealthStatus.ERROR


def test_the_status_follows_load_error_then_loading_then_busy_or_ready() -> None:
    assert worker_status("", False, 0) is HealthStatus.LOADING
    assert worker_status("", True, 0) is HealthStatus.READY
    assert worker_status("", True, 2) is HealthStatus.BUSY
    assert worker_status("no weights", True, 1) is HealthStatus.ERROR
