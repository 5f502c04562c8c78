"""Split text into pieces to synthesize one at a time, so audio can stream as it is made.

Pieces end at sentence boundaries; a sentence longer than ``max_chars`` is cut at clause
boundaries (commas, semicolons, colons, dashes), then at word boundaries. The first piece
is kept short (``first_max_chars``): its synthesis time is the time to first audio. Each
piece carries the pause to insert after it, since engines trim the silence at its ends.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_SENTENCE_END = frozenset(".!?\u2026\u3002\uff01\uff1f")
_CLOSERS = frozenset("\"')]}\u201d\u2019\u00bb")
_CLAUSE = re.compile(r"[,;:\u2013\u2014](?=\s)|\s[\u2013\u2014-](?=\s)")
_SPEAKABLE = re.compile(r"[^\W_]")  # a letter or a digit
_SPACES = re.compile(r"[ \t\f\v]+")
# Words whose trailing period does not end a sentence (English and Portuguese).
_ABBREVIATIONS = frozenset(
    {
        "mr", "mrs", "ms", "dr", "prof", "sr", "sra", "srta", "jr", "st", "vs", "etc",
        "e.g", "i.e", "no", "nos", "av", "ex", "fig", "p.ex", "dra", "profa", "eng",
    }
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class TextPiece:
    """One piece of text to synthesize, and the silence that follows it."""

    text: str
    pause_s: float


@dataclass(frozen=True, slots=True)
class SplitPolicy:
    """How text is cut into pieces."""

    first_max_chars: int = 40
    """The first piece is cut at a clause (up to 1.5 times this length) or, failing that, at
    the last word that fits: its synthesis time is the time to first audio."""
    min_chars: int = 12
    """A cut never leaves a first piece shorter than this."""
    max_chars: int = 250
    """Longer sentences are cut at clause, then word, boundaries."""
    sentence_pause_s: float = 0.25
    """Silence after a sentence (or line)."""
    clause_pause_s: float = 0.1
    """Silence after a piece cut at a clause boundary."""


def split_text(text: str, policy: SplitPolicy | None = None) -> list[TextPiece]:
    """Cut ``text`` into pieces in reading order; pieces with nothing speakable are dropped.

    Returns:
        The pieces; the last has no pause after it. Empty when nothing can be spoken.
    """
    policy = policy or SplitPolicy()
    pieces: list[TextPiece] = []
    for line in text.splitlines():
        for sentence in _sentences(_SPACES.sub(" ", line).strip()):
            pieces.extend(_fit(sentence, policy))
    pieces = [p for p in pieces if _SPEAKABLE.search(p.text)]
    if not pieces:
        return []
    pieces[:1] = _shorten_first(pieces[0], policy)
    pieces[-1] = TextPiece(pieces[-1].text, 0.0)
    return pieces


def _sentences(line: str) -> list[str]:
    """Sentences of one line; a terminator counts when whitespace (or the end) follows."""
    sentences: list[str] = []
    start = 0
    i = 0
    while i < len(line):
        if line[i] in _SENTENCE_END:
            end = i + 1
            while end < len(line) and (line[end] in _SENTENCE_END or line[end] in _CLOSERS):
                end += 1
            if (end == len(line) or line[end] == " ") and not _is_abbreviation(line, start, i):
                sentences.append(line[start:end].strip())
                start = end
            i = end
        else:
            i += 1
    if line[start:].strip():
        sentences.append(line[start:].strip())
    return [s for s in sentences if s]


def _is_abbreviation(line: str, start: int, dot: int) -> bool:
    if line[dot] != ".":
        return False
    word = line[start:dot].rsplit(" ", 1)[-1].lower()
    # A single letter is an initial ("J. R. Tolkien"); inner dots make an abbreviation
    # ("U.S.", "p.m."); neither ends a sentence.
    return word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha()) or "." in word


def _fit(sentence: str, policy: SplitPolicy) -> list[TextPiece]:
    """The sentence as pieces of at most ``max_chars``, cut at clauses, then words."""
    if len(sentence) <= policy.max_chars:
        return [TextPiece(sentence, policy.sentence_pause_s)]
    pieces: list[TextPiece] = []
    current = ""
    for clause in _clauses(sentence):
        if current and len(current) + 1 + len(clause) > policy.max_chars:
            pieces.append(TextPiece(current, policy.clause_pause_s))
            current = ""
        current = f"{current} {clause}".strip()
        while len(current) > policy.max_chars:
            head, current = _cut_at_word(current, policy.max_chars)
            pieces.append(TextPiece(head, 0.0))
    if current:
        pieces.append(TextPiece(current, policy.sentence_pause_s))
    return pieces


def _clauses(sentence: str) -> list[str]:
    """The sentence cut after each clause mark, marks kept with the clause they end."""
    parts: list[str] = []
    start = 0
    for match in _CLAUSE.finditer(sentence):
        parts.append(sentence[start : match.end()].strip())
        start = match.end()
    parts.append(sentence[start:].strip())
    return [p for p in parts if p]


def _cut_at_word(text: str, limit: int) -> tuple[str, str]:
    """Cut at the last space at or before ``limit`` (or at ``limit`` inside a long word)."""
    cut = text.rfind(" ", 0, limit + 1)
    if cut <= 0:
        cut = limit
    return text[:cut].strip(), text[cut:].strip()


def _shorten_first(piece: TextPiece, policy: SplitPolicy) -> list[TextPiece]:
    """Split the first piece so it is short: at a clause if one is near, else at a word."""
    text = piece.text
    if len(text) <= policy.first_max_chars:
        return [piece]
    ends = [m.end() for m in _CLAUSE.finditer(text) if m.end() >= policy.min_chars]
    ends = [e for e in ends if len(text) - e >= policy.min_chars]
    within = [e for e in ends if e <= policy.first_max_chars]
    near = [e for e in ends if e <= policy.first_max_chars * 3 // 2]
    if within or near:
        cut = within[-1] if within else near[0]
        return [
            TextPiece(text[:cut].strip(), policy.clause_pause_s),
            TextPiece(text[cut:].strip(), piece.pause_s),
        ]
    head, tail = _cut_at_word(text, policy.first_max_chars)
    if len(head) < policy.min_chars or len(tail) < policy.min_chars:
        return [piece]
    return [TextPiece(head, 0.0), TextPiece(tail, piece.pause_s)]
