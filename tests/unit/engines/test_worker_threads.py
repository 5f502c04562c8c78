"""Engine threads of worker replicas (the cores split between a model's replicas) and the
engine lanes of each worker (calls at once, the worker's cores split between them)."""

from __future__ import annotations

from unittest import mock

import pytest

from theo.config import Settings, WorkerSettings
from theo.engines.host import engine_config
from theo.engines.stt.faster_whisper_backend import resolve_lanes, resolve_long_audio_batch
from theo.manifest import EngineConfig, ModelManifest
from theo.types import ModelType
from theo.workers.manager import WorkerManager


def _manifest(cpu_threads: int, lanes: int = 0) -> ModelManifest:
    return ModelManifest(
        name="m",
        type=ModelType.STT,
        engine="faster-whisper",
        engine_config=EngineConfig(cpu_threads=cpu_threads, lanes=lanes, beam_size=3),
    )


def test_the_managers_threads_apply_only_where_the_manifest_leaves_them_to_the_engine() -> None:
    assert engine_config(_manifest(0), 4).cpu_threads == 4
    assert engine_config(_manifest(0), 4).beam_size == 3
    assert engine_config(_manifest(2), 4).cpu_threads == 2  # the manifest's choice wins
    assert engine_config(_manifest(0), 0).cpu_threads == 0  # one replica: engine decides


def test_the_servers_lanes_apply_only_where_the_manifest_leaves_them_to_the_worker() -> None:
    assert engine_config(_manifest(0), 0, 3).lanes == 3
    assert engine_config(_manifest(0, lanes=1), 0, 3).lanes == 1
    assert engine_config(_manifest(0), 0, 0).lanes == 0


def test_replicas_share_the_cores_and_one_worker_lets_the_engine_decide() -> None:
    def threads(replicas: int, cores: int) -> int:
        manager = WorkerManager(Settings(worker=WorkerSettings(replicas=replicas)))
        with mock.patch("theo.workers.manager.available_cores", return_value=cores):
            return manager._threads_per_replica()

    assert threads(1, 8) == 0
    assert threads(2, 8) == 4
    assert threads(3, 8) == 2
    assert threads(4, 2) == 1


def test_a_cpu_worker_gets_two_lanes_each_with_its_cores_and_one_lane_keeps_the_old_way() -> None:
    # (device, lanes setting, cpu_threads setting, cores) -> (lanes, threads per lane)
    assert resolve_lanes("cpu", 0, 0, 2) == (2, 2)  # a lone call gets both cores
    assert resolve_lanes("cpu", 0, 0, 16) == (2, 16)
    assert resolve_lanes("cpu", 0, 0, 1) == (1, 0)  # one core: one call, engine's threads
    assert resolve_lanes("cpu", 0, 1, 8) == (1, 1)  # a replica given one core
    assert resolve_lanes("cpu", 0, 4, 8) == (2, 4)  # a replica given four cores
    assert resolve_lanes("cpu", 4, 0, 8) == (4, 8)
    assert resolve_lanes("cpu", 2, 1, 2) == (2, 1)  # one thread per lane, when asked for
    assert resolve_lanes("cpu", 1, 0, 8) == (1, 0)  # one call at a time, as before lanes
    assert resolve_lanes("cuda", 0, 0, 8) == (1, 0)
    assert resolve_lanes("cuda", 2, 0, 8) == (2, 0)


def test_long_audio_is_decoded_two_windows_a_call_on_a_cpu_and_eight_on_cuda() -> None:
    assert resolve_long_audio_batch("cpu", 0) == 2
    assert resolve_long_audio_batch("cuda", 0) == 8
    assert resolve_long_audio_batch("cpu", 1) == 1  # off: one window after another
    assert resolve_long_audio_batch("cuda", 16) == 16


@pytest.mark.parametrize("setting", [-1, 65, 2.5, "4", True, None])
def test_a_long_audio_batch_that_is_not_a_whole_number_in_range_is_refused(
    setting: object,
) -> None:
    with pytest.raises(ValueError, match="long_audio_batch must be 0-64"):
        resolve_long_audio_batch("cpu", setting)
