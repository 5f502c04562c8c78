"""GET /health and GET /metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

from theo import __version__
from theo.server.state import AppState
from theo.types import WorkerState

router = APIRouter()


def worker_summary(state: AppState) -> list[dict[str, Any]]:
    """Per-worker state as shown by /health and `theo ps`."""
    return [
        {
            "id": h.worker_id,
            "model": h.model_name,
            "engine": h.engine,
            "state": h.state.value,
            "pid": h.pid,
            "port": h.port,
            "device": h.device,
            "compute_type": h.compute_type,
            "engine_lanes": h.scheduler.engine_lanes if h.scheduler else None,
            "active_requests": h.active_requests,
            "active_streams": h.active_streams,
            "restarts": h.restarts_total,
            "last_error": h.last_error or None,
        }
        for h in state.manager.handles
    ]


def overall_status(state: AppState) -> str:
    """``ok`` when every worker is routable, ``loading`` while any starts, else ``degraded``."""
    states = [h.state for h in state.manager.handles]
    if all(s in (WorkerState.READY, WorkerState.BUSY) for s in states):
        return "ok"
    if all(s in (WorkerState.READY, WorkerState.BUSY, WorkerState.STARTING) for s in states):
        return "loading"
    return "degraded"


@router.get("/health")
async def health(request: Request) -> JSONResponse:
    """Overall status and every worker's state; 200 while the API process is up."""
    state: AppState = request.app.state.theo
    return JSONResponse(
        {
            "status": overall_status(state),
            "version": __version__,
            "workers": worker_summary(state),
            # Which ITN engine answers per backend: "builtin" until NeMo's grammars are ready.
            "itn": {backend: engine.name for backend, engine in state.itn_engines.items()},
        }
    )


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    """Prometheus text exposition."""
    state: AppState = request.app.state.theo
    return Response(state.metrics.render(), media_type=CONTENT_TYPE_LATEST)
