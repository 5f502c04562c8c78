"""The built-in ITN engine: rule-based Portuguese and English, no extra dependencies."""

from __future__ import annotations

from collections.abc import Callable

from theo.postprocessing.itn.builtin_en import normalize_en
from theo.postprocessing.itn.builtin_pt import normalize_pt

_NORMALIZERS: dict[str, Callable[[str], str]] = {"pt": normalize_pt, "en": normalize_en}


class BuiltinITNEngine:
    """Light rule-based ITN for ``pt`` and ``en``; always available, nothing to warm up."""

    name = "builtin"
    ready = True

    def supports(self, language: str) -> bool:
        """Whether ``language`` is ``"pt"`` or ``"en"``."""
        return language in _NORMALIZERS

    def normalize(self, text: str, language: str) -> str:
        """Rewrite number words in ``text`` as digits."""
        return _NORMALIZERS[language](text)

    def warm_up(self) -> None:
        """Nothing to load: the rules are compiled at import."""
