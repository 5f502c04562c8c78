"""GET /v1/models and GET /v1/models/{id} in OpenAI's list shape, with load status."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from theo.registry.store import InstalledModel
from theo.server.state import AppState

router = APIRouter()


def _model_object(state: AppState, model: InstalledModel) -> dict[str, Any]:
    workers = state.manager.workers_for(model.name)
    status = workers[0].state.value if workers else "not_loaded"
    manifest = model.manifest
    return {
        "id": model.name,
        "object": "model",
        "created": int(model.path.stat().st_mtime),
        "owned_by": "theo",
        "type": manifest.type.value,
        "engine": manifest.engine,
        "architecture": manifest.architecture.value if manifest.architecture else None,
        "status": status,
        "capabilities": manifest.capabilities.model_dump(),
    }


@router.get("/v1/models")
async def list_models(request: Request) -> JSONResponse:
    """Every installed model and whether its worker is ready."""
    state: AppState = request.app.state.theo
    data = [_model_object(state, m) for m in state.models.values()]
    return JSONResponse({"object": "list", "data": data})


@router.get("/v1/models/{model_id:path}")
async def get_model(request: Request, model_id: str) -> JSONResponse:
    """One installed model; 404 lists the installed ones."""
    state: AppState = request.app.state.theo
    return JSONResponse(_model_object(state, state.model(model_id)))
