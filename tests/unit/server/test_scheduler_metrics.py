"""GET /metrics exports each STT worker's scheduling figures from its last health probe."""

from __future__ import annotations

from pathlib import Path

from theo.server.metrics import Metrics
from theo.types import SchedulerStats
from theo.workers.handle import WorkerHandle


def test_the_scheduler_figures_of_probed_workers_are_exported_by_worker() -> None:
    probed = WorkerHandle("stt-m-1", "m", Path("/m"), "faster-whisper")
    probed.scheduler = SchedulerStats(
        realtime_queued=2,
        batch_queued=1,
        batch_calls_waited=5,
        batch_calls_aged=1,
        batch_wait_seconds=0.75,
        cancels=2,
        cancel_latency_seconds=0.5,
        pass_calls=8,
        pass_decodes=20,
        largest_pass_batch=4,
    )
    unprobed = WorkerHandle("stt-m-2", "m", Path("/m"), "faster-whisper")
    metrics = Metrics()
    metrics.watch_schedulers(lambda: [probed, unprobed])

    lines = set(metrics.render().decode().splitlines())

    ids = 'model="m",worker="stt-m-1"'
    assert {
        'theo_scheduler_queue_depth{model="m",priority="realtime",worker="stt-m-1"} 2.0',
        'theo_scheduler_queue_depth{model="m",priority="batch",worker="stt-m-1"} 1.0',
        f"theo_scheduler_batch_waits_total{{{ids}}} 5.0",
        f"theo_scheduler_batch_wait_seconds_total{{{ids}}} 0.75",
        f"theo_scheduler_priority_inversions_total{{{ids}}} 1.0",
        f"theo_cancel_stops_total{{{ids}}} 2.0",
        f"theo_cancel_latency_seconds_total{{{ids}}} 0.5",
        f"theo_batch_calls_total{{{ids}}} 8.0",
        f"theo_batch_decodes_total{{{ids}}} 20.0",
        f"theo_batch_size{{{ids}}} 2.5",
        f"theo_batch_size_max{{{ids}}} 4.0",
    } <= lines
    assert not any("stt-m-2" in line for line in lines)
