"""Limits on text to speak, the same for ``POST /v1/audio/speech`` and ``tts.speak``."""

from __future__ import annotations

import unicodedata

MAX_SPEECH_CHARS = 4096
"""Longest text one request may speak (OpenAI's limit for ``input``)."""
_SPOKEN_WHITESPACE = frozenset("\t\n\r")


def check_speakable(text: str) -> None:
    """Refuse control characters: NUL or escape sequences cannot be spoken, and some
    engines fail on them halfway through a stream, so they are refused before it starts.

    Raises:
        ValueError: names the first control character.
    """
    for char in text:
        if char not in _SPOKEN_WHITESPACE and unicodedata.category(char) == "Cc":
            raise ValueError(f"control character U+{ord(char):04X} cannot be spoken; remove it")
