"""FastAPI application factory and lifespan: store, workers, scheduler, routes."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from theo import __version__
from theo.config import Settings, unknown_setting_variables
from theo.logging import get_logger
from theo.postprocessing.itn.select import select_itn_engines
from theo.registry.store import ModelStore
from theo.server.body_limit import BodyLimitMiddleware
from theo.server.calls.service import Telephony
from theo.server.errors import install_error_handlers
from theo.server.metrics import Metrics
from theo.server.request_metrics import RequestMetricsMiddleware
from theo.server.routes import audio, calls, health, models, speech
from theo.server.security import SecurityMiddleware, SecurityPolicy
from theo.server.speech.session_voice import SessionVoice
from theo.server.state import AppState
from theo.server.transports import websocket
from theo.types import ModelType
from theo.workers.manager import WorkerManager
from theo.workers.stt_client import SimpleScheduler
from theo.workers.tts_client import SynthesisClient

log = get_logger("server")

_ROUTERS = (
    health.router,
    models.router,
    audio.router,
    speech.router,
    websocket.router,
    calls.router,
)


def create_app(settings: Settings) -> FastAPI:
    """Build the app; workers are spawned in the lifespan and stopped on shutdown."""
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = ModelStore(settings.resolved_models_dir)
        manager = WorkerManager(settings, on_change=metrics.worker_changed)
        metrics.watch_schedulers(lambda: manager.handles)
        installed = store.list_installed()
        for variable, meant in unknown_setting_variables(os.environ).items():
            log.warning("unknown_setting_ignored", variable=variable, did_you_mean=meant)
        log.info(
            "server_starting",
            models_dir=str(store.models_dir),
            models=[m.name for m in installed],
        )
        if not installed:
            log.warning("no_models_installed", hint="run `theo pull faster-whisper-tiny.en`")
        await manager.start(installed)
        itn_engines = select_itn_engines(
            # Only transcripts are post-processed: a TTS model needs no grammar.
            (
                m.manifest.postprocessing.itn_backend
                for m in installed
                if m.manifest.type is ModelType.STT
            ),
            settings.resolved_itn_cache_dir,
        )
        # Grammar builds take seconds: they run in the background while the built-in
        # rules answer, and never on a request path.
        warm_ups = [
            asyncio.create_task(asyncio.to_thread(engine.warm_up), name=f"itn-{engine.name}")
            for engine in {id(e): e for e in itn_engines.values()}.values()
        ]
        app.state.theo = AppState(
            settings=settings,
            store=store,
            manager=manager,
            scheduler=SimpleScheduler(manager, settings),
            metrics=metrics,
            models={m.name: m for m in installed},
            itn_engines=itn_engines,
            synthesis=SynthesisClient(manager, settings),
        )
        app.state.theo.voice = SessionVoice(app.state.theo)
        telephony = Telephony(app.state.theo, app.state)
        app.state.telephony = telephony
        try:
            await telephony.start()  # a port in use fails the start-up, workers stopped
            yield
        finally:
            log.info("server_stopping")
            await telephony.stop()
            await manager.stop()
            # A grammar build still running would hold the shutdown for minutes; its
            # thread cannot be stopped, but nothing waits for it any more.
            for warm_up in warm_ups:
                warm_up.cancel()
            await asyncio.gather(*warm_ups, return_exceptions=True)

    app = FastAPI(title="Theo OpenVoice", version=__version__, lifespan=lifespan)
    install_error_handlers(app, settings.retry_after_s)
    for router in _ROUTERS:
        app.include_router(router)
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_file_size_bytes,
        read_timeout_s=settings.body_read_timeout_s,
    )
    # Inside the metrics middleware so refusals are counted; outside the body limit so an
    # unauthenticated upload is refused before a byte of it is read.
    app.add_middleware(SecurityMiddleware, policy=SecurityPolicy.from_settings(settings))
    app.add_middleware(
        RequestMetricsMiddleware,
        metrics=metrics,
        routes=[route for router in _ROUTERS for route in router.routes],
    )
    return app
