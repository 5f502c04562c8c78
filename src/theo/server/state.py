"""What the app shares between requests, built once in the lifespan."""

from __future__ import annotations

from dataclasses import dataclass

from theo.config import Settings
from theo.errors import ModelNotFoundError
from theo.postprocessing.itn.engine import ITNEngine
from theo.registry.store import InstalledModel, ModelStore
from theo.server.metrics import Metrics
from theo.session.speaker import Synthesizer
from theo.workers.manager import WorkerManager
from theo.workers.scheduler import Scheduler
from theo.workers.tts_client import SynthesisClient


@dataclass
class AppState:
    """Server-wide objects, reachable as ``request.app.state.theo``."""

    settings: Settings
    store: ModelStore
    manager: WorkerManager
    scheduler: Scheduler
    metrics: Metrics
    models: dict[str, InstalledModel]
    """The models found at start-up: the ones this server has workers for."""
    itn_engines: dict[str, ITNEngine]
    """ITN engine per backend name used by the served models' manifests."""
    synthesis: SynthesisClient
    """Routes speech requests to the text-to-speech workers."""
    voice: Synthesizer | None = None
    """What realtime sessions speak with (``tts.speak``); set once the state is built."""

    def model(self, name: str) -> InstalledModel:
        """A served model by name; raises :class:`ModelNotFoundError` listing the others."""
        try:
            return self.models[name]
        except KeyError:
            raise ModelNotFoundError(name, list(self.models)) from None
