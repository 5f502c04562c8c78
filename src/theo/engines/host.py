"""What every worker subprocess does around its engine: arguments, gRPC server, signals.

``python -m theo.engines.stt`` and ``python -m theo.engines.tts`` differ only in the
servicer they serve and the engine they load; this module runs the rest the same way.
The gRPC server starts first (Health answers LOADING at once), the model loads off the
event loop, and SIGTERM/SIGINT stop the worker gracefully.

A worker never outlives the API process that started it (``--parent-pid``), however that
process dies (SIGKILL, the OOM killer): see :class:`ParentWatch`.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import os
import signal
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

import grpc

from theo.logging import configure_logging, get_logger
from theo.manifest import EngineConfig, ModelManifest
from theo.onnx_telemetry import disable_onnx_telemetry

InfoT = TypeVar("InfoT")
InfoT_contra = TypeVar("InfoT_contra", contravariant=True)

_STOP_GRACE_S = 3.0
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
PARENT_GONE_EXIT_CODE = 4
"""Exit status of a worker that ends itself because its API process is gone."""


class LoadableServicer(Protocol[InfoT_contra]):
    """The part of a worker's servicer the entry point drives."""

    def mark_loaded(self, info: InfoT_contra) -> None:
        """The model is in memory; Health turns READY."""
        ...

    def mark_failed(self, error: str) -> None:
        """The model could not be loaded; Health reports ERROR."""
        ...

    def shutdown(self) -> None:
        """Cancel in-flight work and release the inference thread."""
        ...


def set_parent_death_signal(sig: signal.Signals) -> bool:
    """Ask the Linux kernel to send ``sig`` to this process when its parent dies.

    The kernel delivers it even when the parent is SIGKILLed, so no code of the parent has
    to run. Caveat: "parent" is the thread that forked us, so the manager must spawn from a
    thread that lives as long as the API process (the event loop's, as it does).

    Returns:
        False where the call does not exist (not Linux) or failed; the caller then relies
        on polling alone.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        result: int = libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
    except (OSError, AttributeError):
        return False
    return result == 0


def _exit_now() -> None:
    # The API process is gone: nobody reads our logs or calls us, and a graceful stop
    # could wait on an inference thread that holds the GIL for seconds.
    os._exit(PARENT_GONE_EXIT_CODE)


class ParentWatch:
    """Ends this worker when the API process that started it is gone.

    Two layers: on Linux the kernel kills us the moment the parent dies (parent-death
    signal); everywhere a daemon thread checks every ``interval_s`` that our parent is
    still ``parent_pid`` (an orphan is re-parented to init or a subreaper). The check
    runs once at :meth:`start` too, for a parent that died before the signal was set.
    """

    def __init__(
        self,
        parent_pid: int,
        *,
        interval_s: float = 1.0,
        on_gone: Callable[[], None] = _exit_now,
        getppid: Callable[[], int] = os.getppid,
    ) -> None:
        self.parent_pid = parent_pid
        self._interval_s = interval_s
        self._on_gone = on_gone
        self._getppid = getppid
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def parent_alive(self) -> bool:
        """Whether our parent is still the process that started us."""
        return self._getppid() == self.parent_pid

    def start(self, *, death_signal: bool = True) -> None:
        """Set the parent-death signal (unless told not to), check once, then keep watching."""
        if death_signal:
            set_parent_death_signal(signal.SIGKILL)
        if not self.parent_alive():
            self._on_gone()
            return
        self._thread = threading.Thread(target=self._run, name="theo-parent-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop watching (tests); the parent-death signal stays set."""
        self._stopped.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        while not self._stopped.wait(self._interval_s):
            if not self.parent_alive():
                self._on_gone()
                return


def engine_config(manifest: ModelManifest, cpu_threads: int, lanes: int = 0) -> EngineConfig:
    """The manifest's engine settings; ``cpu_threads`` (from the manager, which splits the
    cores between a model's replicas) and ``lanes`` (``THEO_SCHEDULER__ENGINE_LANES``)
    apply where the manifest leaves them at 0."""
    config = manifest.engine_config
    updates: dict[str, int] = {}
    if cpu_threads and not config.cpu_threads:
        updates["cpu_threads"] = cpu_threads
    if lanes and not config.lanes:
        updates["lanes"] = lanes
    return config.model_copy(update=updates) if updates else config


def parse_worker_args(kind: str, argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the worker's arguments, bind its life to its parent's and set up logging.

    Arguments: ``--model-dir --port --worker-id --log-format --log-level``,
    ``--parent-pid`` (the API process; when given, the worker ends as soon as that
    process is gone, before it spends time importing an engine or loading a model),
    ``--batch-max-wait-s`` and ``--max-pass-batch`` (see ``SchedulerSettings``) and
    ``--cpu-threads`` (the engine's threads when its manifest leaves them to the engine:
    0 keeps the engine's choice) and ``--engine-lanes`` (engine calls at once, where the
    manifest does not say; 0: the engine decides).
    """
    parser = argparse.ArgumentParser(prog=f"python -m theo.engines.{kind}")
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--worker-id", default=f"{kind}-worker")
    parser.add_argument("--log-format", choices=["console", "json"], default="json")
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--parent-pid", type=int, default=None)
    parser.add_argument("--batch-max-wait-s", type=float, default=6.0)
    parser.add_argument("--max-pass-batch", type=int, default=1)
    parser.add_argument("--cpu-threads", type=int, default=0)
    parser.add_argument("--engine-lanes", type=int, default=0)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if args.parent_pid is not None:
        ParentWatch(args.parent_pid).start()
    configure_logging(args.log_format, args.log_level)
    disable_onnx_telemetry()  # before any engine builds an onnxruntime session
    return args


async def serve_worker(
    args: argparse.Namespace,
    *,
    kind: str,
    model: str,
    servicer: LoadableServicer[InfoT],
    register: Callable[[grpc.aio.Server], None],
    load: Callable[[], InfoT],
    ready_fields: Callable[[InfoT], Mapping[str, Any]],
    grpc_options: Sequence[tuple[str, Any]] = (),
) -> None:
    """Serve ``servicer`` on ``args.port``, load the model, run until SIGTERM/SIGINT.

    Args:
        args: from :func:`parse_worker_args`.
        kind: ``stt`` or ``tts``, for the logger's name.
        model: the model's name, for the logs.
        servicer: marked loaded or failed once ``load`` returns or raises.
        register: adds the servicer to the gRPC server.
        load: loads the engine's model; runs on a thread.
        ready_fields: what the ``worker_ready`` log line tells about the loaded model.
        grpc_options: channel options of the gRPC server (message size limits).

    Raises:
        SystemExit: code 3 when the model cannot be loaded.
    """
    log = get_logger(f"worker.{kind}").bind(worker_id=args.worker_id)
    server = grpc.aio.server(options=list(grpc_options))
    register(server)
    server.add_insecure_port(f"127.0.0.1:{args.port}")
    await server.start()
    log.info("worker_listening", port=args.port, model=model, pid=os.getpid())

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    try:
        info = await asyncio.to_thread(load)
    except Exception as exc:
        log.exception("model_load_failed", model=model)
        servicer.mark_failed(str(exc))
        await server.stop(1.0)
        raise SystemExit(3) from exc
    servicer.mark_loaded(info)
    log.info("worker_ready", **ready_fields(info))

    await stop.wait()
    log.info("worker_stopping")
    servicer.shutdown()
    await server.stop(_STOP_GRACE_S)
    log.info("worker_stopped")
