"""The post-processing chain: ITN -> entity formatting -> hot-word correction.

:func:`postprocess_text` (and :class:`PostProcessor` for many texts of one request) is
the one entry point: the batch routes and realtime finals both call it, so the same text,
language and options give the same output on either path.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from theo.manifest import PostProcessingConfig
from theo.postprocessing.entities import EntityFormatter
from theo.postprocessing.hot_words import HotWordCorrector, fold
from theo.postprocessing.itn import BuiltinITNEngine, DeferredITNEngine, ITNEngine, ITNStage
from theo.postprocessing.stage import TextStage
from theo.types import Task


def merge_hot_words(*sources: Iterable[str]) -> list[str]:
    """Concatenate hot-word lists, dropping blanks and case/accent-insensitive repeats.

    The first spelling seen wins, so a model's configured spelling beats a request's.
    """
    merged: dict[str, str] = {}
    for source in sources:
        for word in source:
            stripped = " ".join(word.split())
            if stripped:
                merged.setdefault(fold(stripped), stripped)
    return list(merged.values())


class PostProcessingChain:
    """Text stages run in order; itself a stage, so chains compose.

    Args:
        stages: the stages, run first to last.
    """

    name = "postprocessing"

    def __init__(self, stages: Sequence[TextStage]) -> None:
        self.stages: tuple[TextStage, ...] = tuple(stages)

    @classmethod
    def build(
        cls,
        config: PostProcessingConfig,
        *,
        itn: bool | None = None,
        hot_words: Sequence[str] = (),
        itn_engine: ITNEngine | None = None,
        task: Task = Task.TRANSCRIBE,
    ) -> PostProcessingChain:
        """The chain a model's configuration and one request's options call for.

        Args:
            config: the model manifest's post-processing section.
            itn: the request's ``itn`` field; overrides ``config.itn`` when not ``None``.
                Off means the engine's raw text: no stage runs at all, not even hot-word
                correction.
            hot_words: the request's hot words, merged after ``config.hot_words``.
            itn_engine: the engine chosen at start-up (see ``select_itn_engine``);
                the built-in rules when ``None``. A :class:`DeferredITNEngine` is
                settled now, so every text this chain processes gets the same engine.
            task: for :attr:`Task.TRANSLATE` the text is the translator's English: ITN
                uses the built-in rules (NeMo's English grammars turn "fifty cents" into
                "$0.50") and money is not formatted, so no currency the speaker did not
                say is added.

        Returns:
            A new chain (stages hold no per-text state, so it may be reused).
        """
        if not (config.itn if itn is None else itn):
            return cls(())
        translate = task is Task.TRANSLATE
        engine: ITNEngine
        if translate or itn_engine is None:
            engine = BuiltinITNEngine()
        elif isinstance(itn_engine, DeferredITNEngine):
            engine = itn_engine.settled()
        else:
            engine = itn_engine
        stages: list[TextStage] = [ITNStage(engine)]
        if config.entities:
            stages.append(EntityFormatter(money=not translate))
        words = merge_hot_words(config.hot_words, hot_words)
        if words:
            stages.append(HotWordCorrector(words, threshold=config.hot_word_threshold))
        return cls(stages)

    def process(self, text: str, language: str | None) -> str:
        """Run every stage on ``text`` in order.

        Args:
            text: a transcript or one segment of it.
            language: ISO 639-1 code of the text, or ``None`` when unknown.

        Returns:
            The post-processed text.
        """
        for stage in self.stages:
            text = stage.process(text, language)
        return text


@dataclass(frozen=True, slots=True)
class PostProcessingOptions:
    """Everything besides a text and its language that decides how it is post-processed.

    Attributes:
        config: the model manifest's post-processing section.
        itn: the request's ``itn`` / the session's ``enable_itn`` (``None``: the manifest's).
        hot_words: the request's or session's hot words.
        itn_engine: the server's engine for ``config.itn_backend``.
        task: transcription or translation (realtime sessions always transcribe).
    """

    config: PostProcessingConfig
    itn: bool | None = None
    hot_words: tuple[str, ...] = ()
    itn_engine: ITNEngine | None = None
    task: Task = Task.TRANSCRIBE


def text_language(language: str | None, task: Task) -> str | None:
    """The language of the text to post-process: English for a translation, whatever
    was spoken; otherwise the engine's (or the request's) language."""
    return "en" if task is Task.TRANSLATE else language


class PostProcessor:
    """Post-processes the texts of one request (a batch result's segments, or one final).

    The chain, and with it the ITN engine, is chosen once, so all segments of a
    transcript are formatted alike.

    Args:
        options: the request's options.
    """

    def __init__(self, options: PostProcessingOptions) -> None:
        self.options = options
        self.chain = PostProcessingChain.build(
            options.config,
            itn=options.itn,
            hot_words=options.hot_words,
            itn_engine=options.itn_engine,
            task=options.task,
        )

    def process(self, text: str, language: str | None) -> str:
        """Post-process one text (a transcript, a segment, a final).

        Args:
            text: the engine's text.
            language: the engine's language for the text, or the requested one.

        Returns:
            The post-processed text.
        """
        return self.chain.process(text, text_language(language, self.options.task))


def postprocess_text(text: str, language: str | None, options: PostProcessingOptions) -> str:
    """Post-process ``text``: the one function of (text, language, options).

    Args:
        text: the engine's text.
        language: its language (ISO 639-1, region suffixes accepted), ``None`` if unknown.
        options: the request's or session's options.

    Returns:
        The post-processed text.
    """
    return PostProcessor(options).process(text, language)
