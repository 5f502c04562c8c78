"""TTS worker entry point: ``python -m theo.workers.tts --model-dir DIR --port N``.

Starts the gRPC server first (Health answers LOADING at once), loads and warms the model
off the event loop, then serves until SIGTERM, which stops gracefully.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from pathlib import Path

import grpc

from theo.logging import configure_logging, get_logger
from theo.manifest import ModelManifest
from theo.proto import tts_worker_pb2_grpc as pb_grpc
from theo.workers.tts.engines import create_backend
from theo.workers.tts.servicer import TTSWorkerServicer

_STOP_GRACE_S = 3.0


def _parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m theo.workers.tts")
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--worker-id", default="tts-worker")
    parser.add_argument("--log-format", choices=["console", "json"], default="json")
    parser.add_argument("--log-level", default="INFO")
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    """Run the worker until SIGTERM/SIGINT."""
    log = get_logger("worker.tts").bind(worker_id=args.worker_id)
    manifest = ModelManifest.load(args.model_dir)
    backend = create_backend(manifest.engine)
    servicer = TTSWorkerServicer(backend, manifest.name)
    server = grpc.aio.server()
    pb_grpc.add_TTSWorkerServicer_to_server(servicer, server)
    server.add_insecure_port(f"127.0.0.1:{args.port}")
    await server.start()
    log.info("worker_listening", port=args.port, model=manifest.name, pid=os.getpid())

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    try:
        info = await asyncio.to_thread(backend.load, args.model_dir, manifest.engine_config)
    except Exception as exc:
        log.exception("model_load_failed", model=manifest.name)
        servicer.mark_failed(str(exc))
        await server.stop(1.0)
        raise SystemExit(3) from exc
    servicer.mark_loaded(info)
    log.info(
        "worker_ready",
        device=info.device,
        sample_rate=info.sample_rate,
        voices=len(info.voices),
    )

    await stop.wait()
    log.info("worker_stopping")
    servicer.shutdown()
    await server.stop(_STOP_GRACE_S)
    log.info("worker_stopped")


def main(argv: list[str] | None = None) -> None:
    """Parse arguments, configure logging and serve."""
    args = _parse_args(sys.argv[1:] if argv is None else argv)
    configure_logging(args.log_format, args.log_level)
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
