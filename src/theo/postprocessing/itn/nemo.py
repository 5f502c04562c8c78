"""ITN engine over NeMo's weighted finite-state grammars (the ``theo[itn]`` extra).

``nemo_text_processing`` and ``pynini`` are imported only inside :meth:`warm_up`, so
importing this module costs nothing. Building a language's grammars takes seconds to
minutes; NeMo writes them to ``<cache_dir>/<lang>_itn_lower_cased.far`` and later starts
load that file instead. A file lock keeps two processes from building into the same
cache at once. A build runs in a child process: compiling the grammars holds the GIL for
up to seconds at a time, which would stall the server's event loop (and every realtime
session on it); loading the built file in-process takes about 2 s in short steps.
"""

from __future__ import annotations

import fcntl
import importlib
import importlib.util
import re
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from theo.logging import get_logger
from theo.postprocessing.itn.builtin_en import ENGLISH
from theo.postprocessing.itn.builtin_pt import PORTUGUESE
from theo.postprocessing.itn.engine import ITNNotReadyError

log = get_logger("postprocessing.itn.nemo")

_MODULE = "nemo_text_processing.inverse_text_normalization.inverse_normalize"
_NUMBER_WORDS = {"pt": PORTUGUESE.words(), "en": ENGLISH.words()}
_BARE_SCALES = {"pt": PORTUGUESE.bare_scales, "en": ENGLISH.bare_scales}
_MASKED_SCALES = {
    lang: re.compile(rf"\b(?:{'|'.join(w.upper() for w in scales) or '(?!)'})\b")
    for lang, scales in _BARE_SCALES.items()
}
_DIGITS_THEN_WORD = re.compile(r"(?<=\d)([^\S\n]+)([^\W\d_]+)\b")
_WORD = re.compile(r"[^\W\d_]+")
_HYPHENATED = re.compile(r"([^\W\d_]+)-([^\W\d_]+)")
# Sentences are normalized one at a time: NeMo's search grows quickly with input length.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_SPACE_BEFORE_PUNCT = re.compile(r"[^\S\n]+(?=[,.;:!?](?!\d))")
_BUILD = (
    "import os, sys; os.nice(10); "
    f"from {_MODULE} import InverseNormalizer; "
    "InverseNormalizer(lang=sys.argv[1], cache_dir=sys.argv[2], overwrite_cache=False)"
)
_BUILD_TIMEOUT_S = 1800


def nemo_available() -> bool:
    """Whether ``nemo_text_processing`` and ``pynini`` are installed (without importing them)."""
    packages = ("pynini", "nemo_text_processing")
    return all(importlib.util.find_spec(name) is not None for name in packages)


class NemoITNEngine:
    """NeMo ``InverseNormalizer`` for Portuguese and English.

    Args:
        cache_dir: where the compiled grammars (``.far`` files) are kept between runs.
        languages: the languages to build; NeMo also has others, untested here.
    """

    name = "nemo"

    def __init__(self, cache_dir: Path, languages: Sequence[str] = ("pt", "en")) -> None:
        self.cache_dir = cache_dir
        self.languages = tuple(languages)
        self._normalizers: dict[str, Any] = {}
        self._locks = {lang: threading.Lock() for lang in self.languages}
        self._build_lock = threading.Lock()

    @property
    def ready(self) -> bool:
        """Whether every language's grammars are loaded."""
        return all(lang in self._normalizers for lang in self.languages)

    def supports(self, language: str) -> bool:
        """Whether ``language`` is one of the configured languages."""
        return language in self.languages

    def warm_up(self) -> None:
        """Build (first run) or load (later runs) the grammars of every language."""
        with self._build_lock:
            missing = [lang for lang in self.languages if lang not in self._normalizers]
            if not missing:
                return
            module = importlib.import_module(_MODULE)
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            with (self.cache_dir / ".lock").open("w") as lock_file:
                fcntl.flock(lock_file, fcntl.LOCK_EX)
                for lang in missing:
                    started = time.perf_counter()
                    self._build(lang)
                    self._normalizers[lang] = module.InverseNormalizer(
                        lang=lang, cache_dir=str(self.cache_dir), overwrite_cache=False
                    )
                    log.info(
                        "itn.nemo.loaded",
                        language=lang,
                        seconds=round(time.perf_counter() - started, 2),
                        cache_dir=str(self.cache_dir),
                    )

    def _build(self, lang: str) -> None:
        """Compile ``lang``'s grammars into the cache in a child process, if not there.

        A failed build is logged and left to the in-process load, which builds them itself.
        """
        if (self.cache_dir / f"{lang}_itn_lower_cased.far").exists():
            return
        started = time.perf_counter()
        try:
            subprocess.run(
                [sys.executable, "-c", _BUILD, lang, str(self.cache_dir)],
                check=True,
                capture_output=True,
                timeout=_BUILD_TIMEOUT_S,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            stderr = getattr(exc, "stderr", b"") or b""
            log.warning(
                "itn.nemo.build_failed",
                language=lang,
                error=str(exc),
                stderr=stderr.decode(errors="replace")[-2000:],
            )
            return
        log.info("itn.nemo.built", language=lang, seconds=round(time.perf_counter() - started, 2))

    def normalize(self, text: str, language: str) -> str:
        """Normalize ``text`` sentence by sentence.

        Raises:
            ITNNotReadyError: :meth:`warm_up` has not loaded ``language`` yet.
        """
        normalizer = self._normalizers.get(language)
        if normalizer is None:
            raise ITNNotReadyError(f"NeMo ITN grammars for '{language}' are not loaded yet")
        parts = _SENTENCE_END.split(text)
        separators = _SENTENCE_END.findall(text)
        out = []
        with self._locks[language]:
            for index, sentence in enumerate(parts):
                out.append(self._sentence(normalizer, sentence, language))
                if index < len(separators):
                    out.append(separators[index])
        return "".join(out)

    def _sentence(self, normalizer: Any, text: str, language: str) -> str:
        sentence = text.strip()
        if not sentence:
            return text
        lead, trail = text[: len(text) - len(text.lstrip())], text[len(text.rstrip()) :]
        result: str = normalizer.inverse_normalize(_prepare(sentence, language), verbose=False)
        result = _MASKED_SCALES[language].sub(lambda m: m.group().lower(), result)
        result = _SPACE_BEFORE_PUNCT.sub("", result)
        if sentence[:1].isupper() and result[:1].islower():
            result = result[:1].upper() + result[1:]
        return f"{lead}{result}{trail}"


def _prepare(sentence: str, language: str) -> str:
    """Shape ``sentence`` for NeMo's lower-cased grammars.

    Number words are lower-cased and hyphenated ones split ("Vinte", "twenty-five" are
    missed otherwise); a bare scale after digits is upper-cased so NeMo leaves it alone
    ("2 mil reais" would become "2 R$ 1000"); the entity formatter reads it later.
    """
    words = _NUMBER_WORDS[language]
    scales = _BARE_SCALES[language]
    prepared = _WORD.sub(
        lambda m: m.group().lower() if m.group().lower() in words else m.group(), sentence
    )
    prepared = _HYPHENATED.sub(
        lambda m: (
            f"{m.group(1)} {m.group(2)}"
            if m.group(1).lower() in words and m.group(2).lower() in words
            else m.group()
        ),
        prepared,
    )
    return _DIGITS_THEN_WORD.sub(
        lambda m: m.group(1) + m.group(2).upper() if m.group(2) in scales else m.group(),
        prepared,
    )
