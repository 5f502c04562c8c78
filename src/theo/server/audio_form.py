"""Parse and validate the OpenAI multipart form of the transcription/translation endpoints."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import FormData, UploadFile

from theo.errors import FileTooLargeError, InvalidRequestError
from theo.postprocessing.limits import MAX_HOT_WORD_LENGTH as _MAX_HOT_WORD_LENGTH
from theo.postprocessing.limits import MAX_HOT_WORDS as _MAX_HOT_WORDS
from theo.types import ResponseFormat, Task, TranscribeParams

_LANGUAGE_PATTERN = re.compile(r"^[a-z]{2,3}$")
_GRANULARITIES = frozenset({"segment", "word"})
_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})
_KNOWN_FIELDS = frozenset(
    {
        "file",
        "model",
        "language",
        "prompt",
        "response_format",
        "temperature",
        "timestamp_granularities",
        "timestamp_granularities[]",
        "hot_words",
        "itn",
        "denoise",
        "dc_remove",
        "gain_normalize",
        "stream",
        "chunking_strategy",
    }
)
_MAX_FIELD_NAME_CHARS = 40


@dataclass(frozen=True, slots=True)
class AudioForm:
    """A validated transcription or translation request."""

    upload: UploadFile
    model: str
    response_format: ResponseFormat
    params: TranscribeParams
    include_words: bool
    itn: bool | None = None
    """Per-request ITN switch; None keeps the model's default."""
    preprocessing: dict[str, Any] = field(default_factory=dict)
    """Per-request overrides of the model's preprocessing settings."""
    stream: bool = False
    """Answer with server-sent events, one text delta per decoded segment (OpenAI's
    ``stream=true``)."""


def _text(form: FormData, name: str) -> str | None:
    value = form.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidRequestError(f"'{name}' must be a text field, not a file.", param=name)
    return value.strip()


def _language(raw: str | None) -> str | None:
    if not raw:
        return None
    # Accept BCP-47 tags such as "pt-BR": the engine needs only the primary language.
    primary = raw.replace("_", "-").split("-")[0].lower()
    if not _LANGUAGE_PATTERN.match(primary):
        raise InvalidRequestError(
            f"Invalid language '{raw}': use an ISO 639-1 code such as 'en' or 'pt'.",
            param="language",
        )
    return primary


def _temperature(raw: str | None) -> float:
    if not raw:
        return 0.0
    try:
        value = float(raw)
    except ValueError:
        raise InvalidRequestError(
            f"Invalid temperature '{raw}': must be a number between 0 and 1.", param="temperature"
        ) from None
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise InvalidRequestError(
            f"Invalid temperature '{raw}': must be between 0 and 1.", param="temperature"
        )
    return value


def _response_format(raw: str | None) -> ResponseFormat:
    if not raw:
        return ResponseFormat.JSON
    try:
        return ResponseFormat(raw)
    except ValueError:
        allowed = ", ".join(f.value for f in ResponseFormat)
        raise InvalidRequestError(
            f"Invalid response_format '{raw}': must be one of {allowed}.", param="response_format"
        ) from None


def _granularities(form: FormData) -> set[str]:
    values = [*form.getlist("timestamp_granularities[]"), *form.getlist("timestamp_granularities")]
    granularities: set[str] = set()
    for value in values:
        if not isinstance(value, str):
            raise InvalidRequestError(
                "timestamp_granularities must be text.", param="timestamp_granularities"
            )
        for raw_item in value.split(","):
            item = raw_item.strip()
            if item not in _GRANULARITIES:
                raise InvalidRequestError(
                    f"Invalid timestamp granularity '{item}': use 'segment' or 'word'.",
                    param="timestamp_granularities",
                )
            granularities.add(item)
    return granularities


def _boolean(form: FormData, name: str) -> bool | None:
    raw = _text(form, name)
    if not raw:
        return None
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    raise InvalidRequestError(f"Invalid {name} '{raw}': use true or false.", param=name)


def _hot_words(raw: str | None) -> tuple[str, ...]:
    if not raw:
        return ()
    words = tuple(dict.fromkeys(w.strip() for w in raw.split(",") if w.strip()))
    if len(words) > _MAX_HOT_WORDS or any(len(w) > _MAX_HOT_WORD_LENGTH for w in words):
        raise InvalidRequestError(
            f"hot_words accepts at most {_MAX_HOT_WORDS} comma-separated words of at most "
            f"{_MAX_HOT_WORD_LENGTH} characters.",
            param="hot_words",
        )
    return words


def _preprocessing(form: FormData) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    denoise = _text(form, "denoise")
    if denoise:
        lowered = denoise.lower()
        if lowered == "auto":
            overrides["denoise"] = "auto"
        elif lowered in _TRUE or lowered in _FALSE:
            overrides["denoise"] = "on" if lowered in _TRUE else "off"
        else:
            raise InvalidRequestError(
                f"Invalid denoise '{denoise}': use auto, true or false.", param="denoise"
            )
    for name in ("dc_remove", "gain_normalize"):
        value = _boolean(form, name)
        if value is not None:
            overrides[name] = value
    return overrides


def _check_field_names(form: FormData) -> None:
    """Every field is one Theo implements: a misspelled or unsupported one is not ignored."""
    unknown = sorted({name for name in form if name not in _KNOWN_FIELDS})
    if unknown:
        shown = ", ".join(f"'{name[:_MAX_FIELD_NAME_CHARS]}'" for name in unknown[:5])
        known = ", ".join(sorted(_KNOWN_FIELDS))
        raise InvalidRequestError(
            f"Unknown or unsupported field(s): {shown}. Accepted fields: {known}.",
            param=unknown[0][:_MAX_FIELD_NAME_CHARS],
        )
    # OpenAI's fields that Theo accepts only with the value it implements.
    chunking = _text(form, "chunking_strategy")
    if chunking and chunking != "auto":
        raise InvalidRequestError(
            "chunking_strategy accepts only 'auto': Theo always splits long audio itself.",
            param="chunking_strategy",
        )


def parse_audio_form(form: FormData, task: Task, max_file_bytes: int) -> AudioForm:
    """Validate every field; the first problem raises an error naming its field."""
    upload = form.get("file")
    if upload is None:
        raise InvalidRequestError("Missing required field 'file'.", param="file")
    if not isinstance(upload, UploadFile):
        raise InvalidRequestError("'file' must be an uploaded audio file.", param="file")
    _check_field_names(form)
    if upload.size is not None and upload.size > max_file_bytes:
        raise FileTooLargeError(
            f"The uploaded file exceeds the maximum size of {max_file_bytes / 2**20:g} MB."
        )
    if upload.size == 0:
        raise InvalidRequestError("The uploaded file is empty.", param="file")
    model = _text(form, "model")
    if not model:
        raise InvalidRequestError("Missing required field 'model'.", param="model")
    response_format = _response_format(_text(form, "response_format"))
    granularities = _granularities(form)
    include_words = "word" in granularities
    if include_words and response_format != ResponseFormat.VERBOSE_JSON:
        raise InvalidRequestError(
            "Word timestamps require response_format 'verbose_json'.",
            param="timestamp_granularities",
        )
    stream = bool(_boolean(form, "stream"))
    if stream and task is Task.TRANSLATE:
        raise InvalidRequestError("Translations are not streamed; omit 'stream'.", param="stream")
    if stream and response_format not in (ResponseFormat.JSON, ResponseFormat.TEXT):
        raise InvalidRequestError(
            "stream=true sends text deltas: use response_format 'json' or 'text'.",
            param="response_format",
        )
    params = TranscribeParams(
        language=_language(_text(form, "language")),
        prompt=_text(form, "prompt") or None,
        temperature=_temperature(_text(form, "temperature")),
        word_timestamps=include_words,
        task=task,
        hot_words=_hot_words(_text(form, "hot_words")),
        # Streamed text deltas come segment by segment: they keep the windowed decoder.
        coarse_segments=response_format in (ResponseFormat.JSON, ResponseFormat.TEXT)
        and not stream,
    )
    return AudioForm(
        upload=upload,
        model=model,
        response_format=response_format,
        params=params,
        include_words=include_words,
        itn=_boolean(form, "itn"),
        preprocessing=_preprocessing(form),
        stream=stream,
    )
