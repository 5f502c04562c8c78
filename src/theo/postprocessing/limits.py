"""Limits on client-supplied hot words, shared by the batch form and realtime sessions.

Hot words become part of the engine's prompt and are fuzzy-matched against every final:
both costs grow with their number and length, so one request cannot be allowed to make
every decode slow.
"""

from __future__ import annotations

MAX_HOT_WORDS = 100
"""Most distinct hot words one request or session may give."""
MAX_HOT_WORD_LENGTH = 64
"""Longest hot word, in characters."""
