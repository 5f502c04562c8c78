"""A session's configuration in force, and how a setting the engine refuses is set back.

The worker sees three settings of each segment (language, hot words, partials). When it
refuses one of them, the field goes back to its value before the ``configure`` that
changed it, or else to its default (which every engine accepts: detect the language, no
hot words), and the uncommitted segments are sent again with that value.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from theo.postprocessing.chain import merge_hot_words
from theo.session.config import SessionConfig
from theo.session.worker_link import Correction
from theo.types import StreamAudio

# The session fields the worker sees (StreamAudio's language, hot_words, enable_partials).
_WORKER_FIELDS = ("language", "hot_words", "enable_partial_transcripts")


class LiveConfig:
    """The configuration in force, the engine's hot words, and the worker fields' history.

    Args:
        config: the initial configuration.
        model_hot_words: the hot words of the model's manifest, merged with the session's.
    """

    def __init__(self, config: SessionConfig, model_hot_words: Sequence[str]) -> None:
        self._model_hot_words = tuple(model_hot_words)
        self._config = config
        self._engine_hot_words = self._merged(config)
        # What a worker-facing field held before its last change.
        self._previous: dict[str, object] = {}

    @property
    def current(self) -> SessionConfig:
        """The configuration in force."""
        return self._config

    def apply(self, updated: SessionConfig) -> None:
        """Put ``updated`` in force, remembering the worker fields it changes."""
        for name in _WORKER_FIELDS:
            if getattr(updated, name) != getattr(self._config, name):
                self._previous[name] = getattr(self._config, name)
        self._set(updated)

    def segment_audio(
        self,
        segment_id: int,
        pcm16: bytes,
        *,
        is_last: bool,
        paused: bool,
        context: str | None = None,
    ) -> StreamAudio:
        """Audio of ``segment_id`` for the worker, with the settings in force; ``context``
        (the words of a dictation the segment goes on with) follows the session's prompt."""
        config = self._config
        return StreamAudio(
            segment_id=segment_id,
            audio_pcm16=pcm16,
            is_last=is_last,
            language=config.language,
            prompt=" ".join(p for p in (config.prompt, context) if p) or None,
            hot_words=self._engine_hot_words,
            enable_partials=config.enable_partial_transcripts,
            speaker_paused=paused,
        )

    def restore(self, field: str | None) -> tuple[object, Correction] | None:
        """Set a refused field back; returns its value now and how to correct the resend.

        None when ``field`` is not one the session sets for the worker: nothing can be
        corrected, so the uncommitted speech is given up.
        """
        if field not in _WORKER_FIELDS:
            return None
        current = getattr(self._config, field)
        default = SessionConfig.model_fields[field].get_default(call_default_factory=True)
        restored = self._previous.pop(field, default)
        if restored == current:
            # Already set back (a frame sent before that was refused too): resend with it;
            # the link gives the speech up if the worker keeps refusing.
            restored = default
        self._set(self._config.model_copy(update={field: restored}))
        return restored, self._correction(field)

    def _correction(self, field: str) -> Correction:
        """Rewrites ``field``'s worker setting to its value in force now."""
        language, partials = self._config.language, self._config.enable_partial_transcripts
        hot_words = self._engine_hot_words

        def correct(options: StreamAudio) -> StreamAudio:
            if field == "language":
                return dataclasses.replace(options, language=language)
            if field == "hot_words":
                return dataclasses.replace(options, hot_words=hot_words)
            return dataclasses.replace(options, enable_partials=partials)

        return correct

    def _set(self, config: SessionConfig) -> None:
        self._config = config
        self._engine_hot_words = self._merged(config)

    def _merged(self, config: SessionConfig) -> tuple[str, ...]:
        """The model's and the session's hot words, merged once per configuration."""
        return tuple(merge_hot_words(self._model_hot_words, config.hot_words))
