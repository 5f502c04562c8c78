"""The post-processing chain: ITN -> entity formatting -> hot-word correction."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from theo.manifest import PostProcessingConfig
from theo.postprocessing.entities import EntityFormatter
from theo.postprocessing.hot_words import HotWordCorrector, fold
from theo.postprocessing.itn import BuiltinITNEngine, ITNEngine, ITNStage
from theo.postprocessing.stage import TextStage


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
    ) -> PostProcessingChain:
        """The chain a model's configuration and one request's options call for.

        Args:
            config: the model manifest's post-processing section.
            itn: the request's ``itn`` field; overrides ``config.itn`` when not ``None``.
                With ITN off, entity formatting is off too (it reads ITN's digits) and
                only hot-word correction runs.
            hot_words: the request's hot words, merged after ``config.hot_words``.
            itn_engine: the engine chosen at start-up (see ``select_itn_engine``);
                the built-in rules when ``None``.

        Returns:
            A new chain (stages hold no per-text state, so it may be reused).
        """
        stages: list[TextStage] = []
        if config.itn if itn is None else itn:
            stages.append(ITNStage(itn_engine if itn_engine is not None else BuiltinITNEngine()))
            if config.entities:
                stages.append(EntityFormatter())
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
