"""WorkerManager: spawns the worker subprocesses of each model and keeps them alive.

Each model gets ``worker.replicas`` workers (separate processes, each with its own port
and id); requests are routed between them by :mod:`theo.workers.routing`.

A worker counts as alive only while it answers Health. Crashes are detected from the
process exit (or from repeated failed probes), and the worker is restarted with
exponential backoff, at most ``max_restarts`` times within ``restart_window_s``.
Stopping sends SIGTERM, then SIGKILL after ``stop_grace_s``, to the worker's process group
(it leads its own), so helpers it started go with it.

Workers never outlive the API process: each is told its parent's pid (``--parent-pid``)
and ends itself when that process is gone, however it died (``theo.engines.host``). So a
restarted server never meets workers of the previous one, and needs no pidfile.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import Callable, Iterable

from theo.config import Settings
from theo.cores import available_cores
from theo.logging import get_logger
from theo.registry.store import InstalledModel
from theo.types import HealthStatus, ModelType, WorkerHealth, WorkerState
from theo.workers.handle import WorkerHandle
from theo.workers.health import probe
from theo.workers.log_drain import drain_lines
from theo.workers.ports import find_free_port

log = get_logger("worker.manager")

_PROBE_FIRST_DELAY_S = 0.05
_PROBE_MAX_DELAY_S = 0.25  # a restarted worker is found ready (and sessions resume) within this
_LIVENESS_FAILURES_BEFORE_KILL = 3
# Log lines a stopped worker left in its pipe; a grandchild that inherited the pipe could
# hold it open forever, so the drains get this long and are then cancelled.
_DRAIN_AFTER_STOP_S = 1.0
_PIPE_LIMIT = 64 * 1024  # asyncio's default StreamReader limit; lines are drained in chunks

_WORKER_MODULES = {ModelType.STT: "theo.engines.stt", ModelType.TTS: "theo.engines.tts"}


class _ExitProtocol(asyncio.subprocess.SubprocessStreamProtocol):
    """asyncio's subprocess protocol plus ``exited``, done as soon as the process exits.

    ``Process.wait()`` also waits for the process's pipes to close, which a child the worker
    started (and that inherited its stdout) can put off forever.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(limit=_PIPE_LIMIT, loop=loop)
        self.exited: asyncio.Future[None] = loop.create_future()

    def process_exited(self) -> None:
        """The process is gone (and reaped): its return code is known."""
        super().process_exited()
        if not self.exited.done():
            self.exited.set_result(None)


def _signal_group(process: asyncio.subprocess.Process, sig: signal.Signals) -> None:
    """Send ``sig`` to a worker and every process it started (it leads its own group).

    Only while the worker is unreaped: until then its pid, the group's id, cannot be reused.
    """
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)


class WorkerManager:
    """Owns every worker subprocess and its supervision task."""

    def __init__(
        self,
        settings: Settings,
        on_change: Callable[[WorkerHandle], None] | None = None,
    ) -> None:
        self._settings = settings
        self._on_change = on_change
        self._handles: dict[str, WorkerHandle] = {}
        self._supervisors: dict[str, asyncio.Task[None]] = {}
        self._drains: dict[str, asyncio.Task[None]] = {}
        # Per worker id: done when its current process has exited.
        self._exits: dict[str, asyncio.Future[None]] = {}
        # Per worker id: its current process's transport. A transport finishes by itself
        # once its process exited and its pipe closed; one whose pipe a child of the worker
        # still holds is closed by stop(), or it would outlive the loop.
        self._transports: dict[str, asyncio.SubprocessTransport] = {}
        self._stopping = False

    @property
    def handles(self) -> list[WorkerHandle]:
        """Every worker, in start order."""
        return list(self._handles.values())

    def workers_for(self, model_name: str) -> list[WorkerHandle]:
        """The workers serving ``model_name``."""
        return [h for h in self._handles.values() if h.model_name == model_name]

    async def start(self, models: Iterable[InstalledModel]) -> None:
        """Spawn the workers of every model whose type has one; returns without waiting."""
        replicas = self._settings.worker.replicas
        for model in models:
            if model.manifest.type not in _WORKER_MODULES:
                continue
            for replica in range(1, replicas + 1):
                worker_id = f"{model.manifest.type.value}-{model.name}"
                if replicas > 1:
                    worker_id += f"-{replica}"
                self._add(model, worker_id)

    def _add(self, model: InstalledModel, worker_id: str) -> None:
        handle = WorkerHandle(
            worker_id=worker_id,
            model_name=model.name,
            model_dir=model.path,
            engine=model.manifest.engine,
            on_change=self._on_change,
            kind=model.manifest.type,
        )
        self._handles[worker_id] = handle
        if self._on_change is not None:
            self._on_change(handle)
        self._supervisors[worker_id] = asyncio.create_task(
            self._supervise(handle, _WORKER_MODULES[model.manifest.type]),
            name=f"supervise-{worker_id}",
        )

    async def stop(self) -> None:
        """Stop every worker: SIGTERM, then SIGKILL after the grace period.

        Takes at most about ``stop_grace_s`` plus a second for the last log lines.
        """
        self._stopping = True
        # Supervisors first, so none spawns a process after its worker was stopped (a
        # spawn cut short by the cancellation kills its half-started process).
        for task in self._supervisors.values():
            task.cancel()
        await asyncio.gather(*self._supervisors.values(), return_exceptions=True)
        await asyncio.gather(*(self._stop_one(h) for h in self._handles.values()))
        drains = list(self._drains.values())
        if drains:
            _, pending = await asyncio.wait(drains, timeout=_DRAIN_AFTER_STOP_S)
            for task in pending:
                task.cancel()
            await asyncio.gather(*drains, return_exceptions=True)
        for transport in self._transports.values():
            if transport.get_returncode() is not None:  # never kill from here
                transport.close()
        self._transports.clear()

    async def _stop_one(self, handle: WorkerHandle) -> None:
        process = handle.process
        if process is not None and process.returncode is None:
            exited = self._exits[handle.worker_id]
            _signal_group(process, signal.SIGTERM)
            try:
                await asyncio.wait_for(asyncio.shield(exited), self._settings.worker.stop_grace_s)
            except TimeoutError:
                log.warning("worker_kill_after_grace", worker_id=handle.worker_id)
                _signal_group(process, signal.SIGKILL)
                await asyncio.shield(exited)
        await handle.close_channel()
        handle.transition(WorkerState.STOPPED)
        log.info("worker_stopped", worker_id=handle.worker_id)

    async def _supervise(self, handle: WorkerHandle, module: str) -> None:
        cfg = self._settings.worker
        while not self._stopping:
            await self._spawn(handle, module)
            if await self._wait_ready(handle):
                await self._watch(handle)
            if self._stopping:
                return
            process = handle.process
            code = process.returncode if process is not None else None
            handle.transition(WorkerState.CRASHED)
            await handle.close_channel()
            log.error(
                "worker_crashed",
                worker_id=handle.worker_id,
                exit_code=code,
                error=handle.last_error,
            )
            now = time.monotonic()
            while handle.restart_times and now - handle.restart_times[0] > cfg.restart_window_s:
                handle.restart_times.popleft()
            if len(handle.restart_times) >= cfg.max_restarts:
                handle.give_up(
                    f"crashed {cfg.max_restarts + 1} times within {cfg.restart_window_s:.0f} s; "
                    "not restarting"
                )
                log.error("worker_restart_limit", worker_id=handle.worker_id)
                return
            delay = cfg.restart_backoff_s * (2 ** len(handle.restart_times))
            handle.restart_times.append(now)
            handle.restarts_total += 1
            log.info("worker_restarting", worker_id=handle.worker_id, delay_s=delay)
            await asyncio.sleep(delay)
            if self._stopping:
                return
            handle.transition(WorkerState.STARTING)

    def _threads_per_replica(self) -> int:
        """Engine threads of each worker: the cores split between a model's replicas, so
        replicas decoding at once do not oversubscribe them; 0 (the engine decides) for one.
        """
        replicas = self._settings.worker.replicas
        return 0 if replicas == 1 else max(1, available_cores() // replicas)

    def _free_port(self) -> int:
        """A free port that no other worker holds (one may be between its processes)."""
        taken = {h.port for h in self._handles.values()}
        while (port := find_free_port()) in taken:
            pass
        return port

    async def _spawn(self, handle: WorkerHandle, module: str) -> None:
        handle.port = self._free_port()
        handle.active_requests = handle.active_streams = 0
        handle.generation += 1
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        loop = asyncio.get_running_loop()
        transport, protocol = await loop.subprocess_exec(
            lambda: _ExitProtocol(loop),
            sys.executable,
            "-m",
            module,
            "--model-dir",
            str(handle.model_dir),
            "--port",
            str(handle.port),
            "--worker-id",
            handle.worker_id,
            "--log-format",
            "json",
            "--log-level",
            self._settings.log_level,
            "--parent-pid",
            str(os.getpid()),
            "--batch-max-wait-s",
            str(self._settings.scheduler.batch_max_wait_s),
            "--max-pass-batch",
            str(self._settings.scheduler.max_pass_batch),
            "--cpu-threads",
            str(self._threads_per_replica()),
            "--engine-lanes",
            str(self._settings.scheduler.engine_lanes),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=env,
            start_new_session=True,  # a Ctrl+C on the terminal reaches the server, which stops us
        )
        handle.process = asyncio.subprocess.Process(transport, protocol, loop)
        self._exits[handle.worker_id] = protocol.exited
        assert handle.process.stdout is not None
        self._transports[handle.worker_id] = transport
        self._drains[f"{handle.worker_id}-{handle.generation}"] = asyncio.create_task(
            drain_lines(handle.process.stdout, handle.worker_id)
        )
        handle.open_channel()
        handle.started_at = time.time()
        log.info("worker_spawned", worker_id=handle.worker_id, pid=handle.pid, port=handle.port)

    async def _probe(self, handle: WorkerHandle) -> WorkerHealth | None:
        return await probe(handle, self._settings.worker.health_timeout_s)

    async def _wait_ready(self, handle: WorkerHandle) -> bool:
        deadline = time.monotonic() + self._settings.worker.startup_timeout_s
        delay = _PROBE_FIRST_DELAY_S
        process = handle.process
        assert process is not None
        while time.monotonic() < deadline and not self._stopping:
            if process.returncode is not None:
                return False
            health = await self._probe(handle)
            if health is not None and health.status is HealthStatus.ERROR:
                handle.last_error = health.error
            elif health is not None and health.status is not HealthStatus.LOADING:
                handle.device, handle.compute_type = health.device, health.compute_type
                handle.last_error = ""
                handle.transition(WorkerState.READY)
                log.info("worker_ready", worker_id=handle.worker_id, port=handle.port)
                return True
            await asyncio.wait({self._exits[handle.worker_id]}, timeout=delay)
            delay = min(delay * 2, _PROBE_MAX_DELAY_S)
        if not self._stopping:
            handle.last_error = "did not become ready before the startup timeout"
            await self._kill(handle)
        return False

    async def _watch(self, handle: WorkerHandle) -> None:
        """Return when the process exits or stops answering probes (then it is killed)."""
        exited = self._exits[handle.worker_id]
        failures = 0
        while True:
            done, _ = await asyncio.wait({exited}, timeout=self._settings.worker.health_interval_s)
            if done or self._stopping:
                return
            health = await self._probe(handle)
            if health is None:
                failures += 1
                log.warning("worker_probe_failed", worker_id=handle.worker_id, failures=failures)
                if failures >= _LIVENESS_FAILURES_BEFORE_KILL:
                    handle.last_error = "stopped answering health probes"
                    await self._kill(handle)
                    return
            else:
                failures = 0
                handle.scheduler = health.scheduler

    async def _kill(self, handle: WorkerHandle) -> None:
        process = handle.process
        if process is not None and process.returncode is None:
            _signal_group(process, signal.SIGKILL)
            await asyncio.shield(self._exits[handle.worker_id])
