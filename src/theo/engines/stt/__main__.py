"""STT worker entry point: ``python -m theo.engines.stt --model-dir DIR --port N``.

Starts the gRPC server first (Health answers LOADING at once), loads the model off
the event loop, then serves until SIGTERM, which stops gracefully.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from theo.engines.host import engine_config, parse_worker_args, serve_worker
from theo.engines.stt.engines import create_backend
from theo.engines.stt.servicer import STTWorkerServicer
from theo.manifest import ModelManifest
from theo.wire.proto import stt_worker_pb2_grpc as pb_grpc

_MAX_MESSAGE_BYTES = 1024 * 1024 * 1024  # an hour of 16 kHz PCM16 is ~115 MB


def main(argv: Sequence[str] | None = None) -> None:
    """Parse arguments, configure logging and serve."""
    args = parse_worker_args("stt", argv)
    manifest = ModelManifest.load(args.model_dir)
    backend = create_backend(manifest.engine)
    servicer = STTWorkerServicer(
        backend,
        manifest.name,
        batch_max_wait_s=args.batch_max_wait_s,
        max_pass_batch=args.max_pass_batch,
    )
    asyncio.run(
        serve_worker(
            args,
            kind="stt",
            model=manifest.name,
            servicer=servicer,
            register=lambda server: pb_grpc.add_STTWorkerServicer_to_server(servicer, server),
            load=lambda: backend.load(
                args.model_dir, engine_config(manifest, args.cpu_threads, args.engine_lanes)
            ),
            ready_fields=lambda info: {
                "device": info.device,
                "compute_type": info.compute_type,
                "lanes": info.lanes,
            },
            grpc_options=(
                ("grpc.max_receive_message_length", _MAX_MESSAGE_BYTES),
                ("grpc.max_send_message_length", _MAX_MESSAGE_BYTES),
            ),
        )
    )


if __name__ == "__main__":
    main()
