"""What the app shares between requests, built once in the lifespan."""

from __future__ import annotations

from dataclasses import dataclass

from theo.config import Settings
from theo.registry.store import ModelStore
from theo.scheduler.base import Scheduler
from theo.server.metrics import Metrics
from theo.workers.manager import WorkerManager


@dataclass
class AppState:
    """Server-wide objects, reachable as ``request.app.state.theo``."""

    settings: Settings
    store: ModelStore
    manager: WorkerManager
    scheduler: Scheduler
    metrics: Metrics
