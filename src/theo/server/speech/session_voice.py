"""The server's text-to-speech side as realtime sessions use it (``tts.speak``).

Resolves a reply's model (the session's ``tts_model``, else the first TTS model with a
ready worker) and checks its voice and speed against the model's voice catalog before
the reply is queued, so a bad request is refused at once, not when its turn comes.
"""

from __future__ import annotations

from theo.errors import InvalidRequestError, ModelUnavailableError
from theo.server.state import AppState
from theo.session.speaker import SpeechAudio, VoiceChoice
from theo.types import ModelType, SpeechRequest, VoiceCatalog
from theo.workers.routing import usable

_VOICES_LISTED = 8


class SessionVoice:
    """Implements :class:`theo.session.speaker.Synthesizer` over the TTS workers."""

    def __init__(self, state: AppState) -> None:
        self._state = state
        self._catalogs: dict[str, VoiceCatalog] = {}

    async def choose(self, model: str | None, voice: str, speed: float) -> VoiceChoice:
        """Resolve the model and voice of a reply (see ``Synthesizer.choose``)."""
        name = model or self._first_ready()
        installed = self._state.model(name)
        kind = installed.manifest.type
        if kind != ModelType.TTS:
            raise InvalidRequestError(
                f"Model '{name}' is a {kind.value} model, not text-to-speech.", param="model"
            )
        catalog = await self._catalog(name)
        voice_id = voice or catalog.default_voice
        if all(v.id != voice_id for v in catalog.voices):
            some = ", ".join(v.id for v in catalog.voices[:_VOICES_LISTED])
            raise InvalidRequestError(
                f"Unknown voice '{voice_id}' for model '{name}'. Voices include: {some} "
                "(GET /v1/audio/voices lists them all).",
                param="voice",
            )
        if not catalog.min_speed <= speed <= catalog.max_speed:
            raise InvalidRequestError(
                f"Model '{name}' supports speed from {catalog.min_speed:g} to "
                f"{catalog.max_speed:g}; got {speed:g}.",
                param="speed",
            )
        return VoiceChoice(name, voice_id)

    async def open(self, request: SpeechRequest) -> SpeechAudio:
        """Start synthesizing on a worker; returns once the first chunk arrived."""
        return await self._state.synthesis.open(request)

    async def _catalog(self, model: str) -> VoiceCatalog:
        # A model's voices do not change while the server runs (a restarted worker
        # loads the same files), so one question per model is enough.
        catalog = self._catalogs.get(model)
        if catalog is None:
            catalog = self._catalogs[model] = await self._state.synthesis.voices(model)
        return catalog

    def _first_ready(self) -> str:
        names = [n for n, m in self._state.models.items() if m.manifest.type == ModelType.TTS]
        if not names:
            raise InvalidRequestError("This server serves no text-to-speech model.", "model")
        manager = self._state.manager
        for name in names:
            if any(usable(w) for w in manager.workers_for(name)):
                return name
        raise ModelUnavailableError(
            f"No text-to-speech model is ready yet ({', '.join(names)}); try again shortly."
        )
