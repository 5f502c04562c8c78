"""Entity formatting (money, percentages, documents, dates, times) after ITN."""

from __future__ import annotations

from typing import Protocol

from theo.postprocessing.entities.en import format_entities_en
from theo.postprocessing.entities.pt_br import format_entities_pt
from theo.postprocessing.stage import base_language


class _Formatter(Protocol):
    def __call__(self, text: str, *, money: bool = True) -> str: ...


_FORMATTERS: dict[str, _Formatter] = {"pt": format_entities_pt, "en": format_entities_en}


class EntityFormatter:
    """Text stage formatting entities in Portuguese (pt-BR conventions) and English text.

    Args:
        money: format money amounts; ``False`` for text whose currency words may not be
            the speaker's (translations).
    """

    name = "entities"

    def __init__(self, *, money: bool = True) -> None:
        self.money = money

    def process(self, text: str, language: str | None) -> str:
        """Format the entities of ``text``; other languages pass through unchanged."""
        formatter = _FORMATTERS.get(base_language(language) or "")
        return formatter(text, money=self.money) if formatter else text


__all__ = ["EntityFormatter", "format_entities_en", "format_entities_pt"]
