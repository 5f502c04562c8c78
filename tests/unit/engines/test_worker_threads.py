"""Engine threads of worker replicas: the cores split between a model's replicas."""

from __future__ import annotations

from unittest import mock

from theo.config import Settings, WorkerSettings
from theo.engines.host import engine_config
from theo.manifest import EngineConfig, ModelManifest
from theo.types import ModelType
from theo.workers.manager import WorkerManager


def _manifest(cpu_threads: int) -> ModelManifest:
    return ModelManifest(
        name="m",
        type=ModelType.STT,
        engine="faster-whisper",
        engine_config=EngineConfig(cpu_threads=cpu_threads, beam_size=3),
    )


def test_the_managers_threads_apply_only_where_the_manifest_leaves_them_to_the_engine() -> None:
    assert engine_config(_manifest(0), 4).cpu_threads == 4
    assert engine_config(_manifest(0), 4).beam_size == 3
    assert engine_config(_manifest(2), 4).cpu_threads == 2  # the manifest's choice wins
    assert engine_config(_manifest(0), 0).cpu_threads == 0  # one replica: engine decides


def test_replicas_share_the_cores_and_one_worker_lets_the_engine_decide() -> None:
    def threads(replicas: int, cores: int) -> int:
        manager = WorkerManager(Settings(worker=WorkerSettings(replicas=replicas)))
        with mock.patch("os.cpu_count", return_value=cores):
            return manager._threads_per_replica()

    assert threads(1, 8) == 0
    assert threads(2, 8) == 4
    assert threads(3, 8) == 2
    assert threads(4, 2) == 1
