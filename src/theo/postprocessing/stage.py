"""The text-stage interface shared by every post-processing step."""

from __future__ import annotations

from typing import Protocol


class TextStage(Protocol):
    """One step of the post-processing chain: text in, text out.

    A stage handles the languages it knows and returns any other text unchanged, so
    stages compose without knowing about each other.
    """

    name: str
    """Short identifier used in logs and metrics."""

    def process(self, text: str, language: str | None) -> str:
        """Transform ``text``.

        Args:
            text: the transcript (or one segment of it).
            language: ISO 639-1 code of the text (``"pt"``, ``"en"``); region suffixes such
                as ``"pt-BR"`` are accepted. ``None`` or an unknown code usually means the
                stage passes the text through.

        Returns:
            The transformed text.
        """
        ...


def base_language(language: str | None) -> str | None:
    """Reduce ``"pt-BR"``, ``"pt_br"`` or ``"PT"`` to ``"pt"``; ``None`` stays ``None``."""
    if not language:
        return None
    return language.replace("_", "-").split("-", 1)[0].strip().lower() or None
