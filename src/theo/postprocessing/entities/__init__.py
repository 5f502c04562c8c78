"""Entity formatting (money, percentages, documents, dates, times) after ITN."""

from __future__ import annotations

from collections.abc import Callable

from theo.postprocessing.entities.en import format_entities_en
from theo.postprocessing.entities.pt_br import format_entities_pt
from theo.postprocessing.stage import base_language

_FORMATTERS: dict[str, Callable[[str], str]] = {"pt": format_entities_pt, "en": format_entities_en}


class EntityFormatter:
    """Text stage formatting entities in Portuguese (pt-BR conventions) and English text."""

    name = "entities"

    def process(self, text: str, language: str | None) -> str:
        """Format the entities of ``text``; other languages pass through unchanged."""
        formatter = _FORMATTERS.get(base_language(language) or "")
        return formatter(text) if formatter else text


__all__ = ["EntityFormatter", "format_entities_en", "format_entities_pt"]
