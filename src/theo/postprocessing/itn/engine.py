"""The ITN engine interface and the text stage that runs an engine."""

from __future__ import annotations

from typing import Protocol

from theo.errors import TheoError
from theo.postprocessing.itn.small_numbers import spell_small_numbers
from theo.postprocessing.stage import base_language


class ITNUnavailableError(TheoError):
    """The requested ITN backend cannot run here (e.g. ``theo[itn]`` is not installed)."""


class ITNNotReadyError(TheoError):
    """An engine was asked to normalize before :meth:`ITNEngine.warm_up` finished."""

    retryable = True


class ITNEngine(Protocol):
    """Inverse text normalization: spoken-form numbers to written form ("vinte" -> "20")."""

    @property
    def name(self) -> str:
        """Short identifier used in logs and metrics ("builtin", "nemo")."""
        ...

    @property
    def ready(self) -> bool:
        """Whether :meth:`normalize` can run now (``False`` until :meth:`warm_up` is done)."""
        ...

    def supports(self, language: str) -> bool:
        """Whether ``language`` (ISO 639-1, e.g. ``"pt"``) can be normalized."""
        ...

    def normalize(self, text: str, language: str) -> str:
        """Return ``text`` with numbers in written form; call only if :meth:`supports`."""
        ...

    def warm_up(self) -> None:
        """Load or build whatever the engine needs, once; slow, so never on a request path.

        Idempotent and safe to call from a background thread while :meth:`normalize`
        serves requests.
        """
        ...


class ITNStage:
    """Text stage running an :class:`ITNEngine` on the languages it supports.

    After the engine, lone small digits are spelled out (:func:`spell_small_numbers`):
    the engine's input may already hold digits the ASR engine chose to write, and the
    written form must not depend on that choice or on which ITN engine answered.

    Args:
        engine: the engine to run; text in other languages passes through unchanged.
    """

    name = "itn"

    def __init__(self, engine: ITNEngine) -> None:
        self.engine = engine

    def process(self, text: str, language: str | None) -> str:
        """Normalize ``text`` when its language is supported, else return it unchanged."""
        lang = base_language(language)
        if lang is None or not self.engine.supports(lang):
            return text
        return spell_small_numbers(self.engine.normalize(text, lang), lang)
