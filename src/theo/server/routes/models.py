"""GET /v1/models and GET /v1/models/{id} in OpenAI's list shape, with load status.

The list is read from the models directory on each call, so it reflects ``theo pull`` and
``theo remove`` while the server runs: a model pulled since start-up is listed as
``not_loaded`` (restart the server to serve it); a served model whose files were removed
is listed as ``removed`` (its worker keeps serving it until the server restarts).
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from theo.registry.store import InstalledModel
from theo.server.state import AppState

router = APIRouter()


def _created(model: InstalledModel) -> int:
    try:
        return int(model.path.stat().st_mtime)
    except OSError:  # removed while the server runs
        return 0


def _model_object(
    state: AppState, model: InstalledModel, *, on_disk: bool = True
) -> dict[str, Any]:
    workers = state.manager.workers_for(model.name)
    # With several workers, the model is as available as its most available one.
    serving = [w for w in workers if w.routable] or workers
    status = serving[0].state.value if serving else "not_loaded"
    if not on_disk:
        status = "removed"
    manifest = model.manifest
    return {
        "id": model.name,
        "object": "model",
        "created": _created(model),
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
    installed = {m.name: m for m in await asyncio.to_thread(state.store.list_installed)}
    names = sorted(set(installed) | set(state.models))
    data = [
        _model_object(state, installed.get(name) or state.models[name], on_disk=name in installed)
        for name in names
    ]
    return JSONResponse({"object": "list", "data": data})


@router.get("/v1/models/{model_id:path}")
async def get_model(request: Request, model_id: str) -> JSONResponse:
    """One installed model; 404 lists the installed ones."""
    state: AppState = request.app.state.theo
    model = state.model(model_id)
    on_disk = await asyncio.to_thread(model.path.is_dir)
    return JSONResponse(_model_object(state, model, on_disk=on_disk))
