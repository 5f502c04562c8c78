"""What every transport does before a session starts: a place, a model, a first config."""

from __future__ import annotations

import uuid

from starlette.datastructures import State

from theo.errors import InvalidRequestError
from theo.server.state import AppState
from theo.session.config import SessionConfig, check_supported
from theo.session.context import SessionContext
from theo.session.errors import SessionLimitError
from theo.session.slots import SessionSlots, Slot
from theo.types import ModelType


def take_slot(app_state: State, limit: int) -> Slot:
    """A place for one more session among all transports' sessions.

    Raises:
        SessionLimitError: ``limit`` sessions are open.
    """
    slots: SessionSlots | None = getattr(app_state, "realtime_slots", None)
    if slots is None:
        slots = SessionSlots()
        app_state.realtime_slots = slots
    slot = slots.take(limit)
    if slot is None:
        raise SessionLimitError(
            f"The server already serves {limit} realtime sessions, its limit "
            "(THEO_SESSION__MAX_SESSIONS); try again later."
        )
    return slot


def new_session_id() -> str:
    """A fresh, unguessable session id."""
    return f"sess_{uuid.uuid4().hex[:16]}"


def prepare(
    state: AppState, model_name: str, language: str | None
) -> tuple[SessionContext, SessionConfig]:
    """The context and first configuration of a session of ``model_name``.

    Like batch answering 400, a language the model cannot do fails now, not at the first
    speech.

    Raises:
        ModelNotFoundError: no such model is served.
        InvalidRequestError: the model cannot stream (param ``model``), or ``language`` is
            invalid or not one the model declares (param ``language``).
    """
    context = _context(state, model_name)
    config = SessionConfig().updated({"language": language})
    check_supported(config, context.manifest)
    return context, config


def _context(state: AppState, model_name: str) -> SessionContext:
    model = state.model(model_name)
    manifest = model.manifest
    if manifest.type != ModelType.STT or not manifest.capabilities.streaming:
        raise InvalidRequestError(
            f"Model '{model_name}' cannot serve realtime transcription.", param="model"
        )
    return SessionContext(
        model_name=model_name,
        manifest=manifest,
        scheduler=state.scheduler,
        itn_engine=state.itn_engines.get(manifest.postprocessing.itn_backend),
        metrics=state.metrics,
        limits=state.settings.session,
        synthesizer=state.voice,
    )
