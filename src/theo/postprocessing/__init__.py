"""Text post-processing of transcripts: ITN, entity formatting and hot-word correction."""

from theo.postprocessing.chain import (
    PostProcessingChain,
    PostProcessingOptions,
    PostProcessor,
    merge_hot_words,
    postprocess_text,
    text_language,
)
from theo.postprocessing.entities import EntityFormatter
from theo.postprocessing.hot_words import HotWordCorrector
from theo.postprocessing.itn import (
    BuiltinITNEngine,
    DeferredITNEngine,
    ITNEngine,
    ITNStage,
    ITNUnavailableError,
    NemoITNEngine,
    select_itn_engine,
)
from theo.postprocessing.stage import TextStage, base_language

__all__ = [
    "BuiltinITNEngine",
    "DeferredITNEngine",
    "EntityFormatter",
    "HotWordCorrector",
    "ITNEngine",
    "ITNStage",
    "ITNUnavailableError",
    "NemoITNEngine",
    "PostProcessingChain",
    "PostProcessingOptions",
    "PostProcessor",
    "TextStage",
    "base_language",
    "merge_hot_words",
    "postprocess_text",
    "select_itn_engine",
    "text_language",
]
