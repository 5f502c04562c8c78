"""TTS worker entry point: ``python -m theo.engines.tts --model-dir DIR --port N``.

Starts the gRPC server first (Health answers LOADING at once), loads and warms the model
off the event loop, then serves until SIGTERM, which stops gracefully.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from theo.engines.host import engine_config, parse_worker_args, serve_worker
from theo.engines.tts.engines import create_backend
from theo.engines.tts.servicer import TTSWorkerServicer
from theo.manifest import ModelManifest
from theo.wire.proto import tts_worker_pb2_grpc as pb_grpc


def main(argv: Sequence[str] | None = None) -> None:
    """Parse arguments, configure logging and serve."""
    args = parse_worker_args("tts", argv)
    manifest = ModelManifest.load(args.model_dir)
    backend = create_backend(manifest.engine)
    servicer = TTSWorkerServicer(backend, manifest.name)
    asyncio.run(
        serve_worker(
            args,
            kind="tts",
            model=manifest.name,
            servicer=servicer,
            register=lambda server: pb_grpc.add_TTSWorkerServicer_to_server(servicer, server),
            load=lambda: backend.load(args.model_dir, engine_config(manifest, args.cpu_threads)),
            ready_fields=lambda info: {
                "device": info.device,
                "sample_rate": info.sample_rate,
                "voices": len(info.voices),
            },
        )
    )


if __name__ == "__main__":
    main()
