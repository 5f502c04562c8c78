"""Choosing the ITN engine by name, with the built-in rules covering NeMo's warm-up."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from theo.logging import get_logger
from theo.postprocessing.itn.builtin import BuiltinITNEngine
from theo.postprocessing.itn.engine import ITNEngine, ITNUnavailableError
from theo.postprocessing.itn.nemo import NemoITNEngine, nemo_available

log = get_logger("postprocessing.itn")

BACKENDS = ("auto", "nemo", "builtin")


class DeferredITNEngine:
    """Serves with ``fallback`` until ``primary`` has warmed up, then with ``primary``.

    Requests never wait for grammars: until :meth:`warm_up` (run in a background thread)
    has finished, and for good if it fails, the fallback answers.

    Args:
        primary: the preferred engine, not usable before its warm-up.
        fallback: an engine that is usable at once.
    """

    def __init__(self, primary: ITNEngine, fallback: ITNEngine) -> None:
        self.primary = primary
        self.fallback = fallback

    @property
    def name(self) -> str:
        """The name of the engine currently answering."""
        return self.primary.name if self.primary.ready else self.fallback.name

    @property
    def ready(self) -> bool:
        """Always ``True``: the fallback answers while the primary warms up."""
        return True

    @property
    def upgraded(self) -> bool:
        """Whether the primary engine has taken over from the fallback."""
        return self.primary.ready

    def supports(self, language: str) -> bool:
        """Whether either engine handles ``language``."""
        return self.primary.supports(language) or self.fallback.supports(language)

    def normalize(self, text: str, language: str) -> str:
        """Normalize with the primary engine once ready, otherwise with the fallback."""
        if self.primary.ready and self.primary.supports(language):
            try:
                return self.primary.normalize(text, language)
            except Exception:  # a grammar failure on odd input must not fail the request
                log.warning("itn.nemo.failed", language=language, exc_info=True)
        if self.fallback.supports(language):
            return self.fallback.normalize(text, language)
        return text

    def settled(self) -> ITNEngine:
        """The engine to use for one whole request or final, chosen now.

        A transcript's segments must not be split between two engines because the
        grammars finished loading halfway through it: before the upgrade this is the
        fallback itself; after it (for good), this engine, whose per-call fallback covers
        grammar failures.
        """
        return self if self.primary.ready else self.fallback

    def warm_up(self) -> None:
        """Warm the primary engine; on failure, log it and keep serving with the fallback."""
        try:
            self.primary.warm_up()
        except Exception:  # any build failure leaves the built-in rules in charge
            log.error("itn.nemo.warm_up_failed", exc_info=True)


def select_itn_engine(backend: str, cache_dir: Path) -> ITNEngine:
    """Pick the ITN engine for ``backend`` (``PostProcessingConfig.itn_backend``).

    Nothing slow happens here: for NeMo the caller must run ``warm_up()`` (in a
    background thread at start-up); until it finishes the built-in engine answers.

    Args:
        backend: ``"builtin"``; ``"nemo"``; or ``"auto"`` (NeMo when the ``theo[itn]``
            extra is installed, else built-in).
        cache_dir: where NeMo keeps its compiled grammars (e.g. ``$THEO_HOME/cache/itn``).

    Returns:
        The engine.

    Raises:
        ITNUnavailableError: ``"nemo"`` was asked for but is not installed.
        ValueError: ``backend`` is not one of :data:`BACKENDS`.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown ITN backend {backend!r}; expected one of {BACKENDS}")
    if backend == "builtin" or (backend == "auto" and not nemo_available()):
        return BuiltinITNEngine()
    if not nemo_available():
        raise ITNUnavailableError(
            "ITN backend 'nemo' needs the optional extra: pip install 'theo-openvoice[itn]'"
        )
    return DeferredITNEngine(NemoITNEngine(cache_dir), BuiltinITNEngine())


def select_itn_engines(backends: Iterable[str], cache_dir: Path) -> dict[str, ITNEngine]:
    """One engine per requested backend name; ``auto`` and ``nemo`` share one NeMo engine.

    A ``nemo`` backend that is not installed is logged and served by the built-in rules,
    so one model's manifest cannot keep the server from starting.
    """
    engines: dict[str, ITNEngine] = {}
    shared: dict[str, ITNEngine] = {}
    for backend in sorted(set(backends)):
        try:
            engine = select_itn_engine(backend, cache_dir)
        except ITNUnavailableError as exc:
            log.error("itn.backend_unavailable", backend=backend, error=exc.message)
            engine = BuiltinITNEngine()
        engines[backend] = shared.setdefault(type(engine).__name__, engine)
    return engines
