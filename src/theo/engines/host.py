"""What every worker subprocess does around its engine: arguments, gRPC server, signals.

``python -m theo.engines.stt`` and ``python -m theo.engines.tts`` differ only in the
servicer they serve and the engine they load; this module runs the rest the same way.
The gRPC server starts first (Health answers LOADING at once), the model loads off the
event loop, and SIGTERM/SIGINT stop the worker gracefully.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

import grpc

from theo.logging import configure_logging, get_logger
from theo.onnx_telemetry import disable_onnx_telemetry

InfoT = TypeVar("InfoT")
InfoT_contra = TypeVar("InfoT_contra", contravariant=True)

_STOP_GRACE_S = 3.0


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


def parse_worker_args(kind: str, argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse ``--model-dir --port --worker-id --log-format --log-level`` and set up logging."""
    parser = argparse.ArgumentParser(prog=f"python -m theo.engines.{kind}")
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--worker-id", default=f"{kind}-worker")
    parser.add_argument("--log-format", choices=["console", "json"], default="json")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
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
