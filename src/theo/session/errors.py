"""Domain errors become error events here, and only here.

A session is refused before it starts (never recoverable), refuses one input while it
goes on (recoverable unless the session cannot take input any more), or fails (never
recoverable). Transports add their own codes for messages they cannot parse through
:class:`ClientError`; everything else is classified by the error's type.
"""

from __future__ import annotations

import enum
import json

from theo.errors import InvalidRequestError, ModelNotFoundError, ModelUnavailableError, TheoError
from theo.session.events import ErrorEvent


class ErrorCode(enum.StrEnum):
    """The codes of the session's own error events."""

    TOO_MANY_SESSIONS = "too_many_sessions"
    MODEL_NOT_FOUND = "model_not_found"
    MODEL_UNAVAILABLE = "model_unavailable"
    INVALID_VALUE = "invalid_value"
    SESSION_CLOSED = "session_closed"
    WORKER_CRASHED = "worker_crashed"
    WORKER_UNAVAILABLE = "worker_unavailable"
    TTS_FAILED = "tts_failed"


class SessionLimitError(TheoError):
    """The server already serves as many sessions as it may; try again later."""


class SessionClosedError(TheoError):
    """Audio or a command arrived after the session stopped taking them (CLOSING)."""

    def __init__(self) -> None:
        super().__init__("The session is closed.")


class ClientError(TheoError):
    """A message the transport could not turn into audio or a command; the session goes on.

    Args:
        code: the transport's code for the fault (e.g. an unparsable message).
        message: what is wrong, for the client.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


_REFUSALS: tuple[tuple[type[TheoError], ErrorCode], ...] = (
    (SessionLimitError, ErrorCode.TOO_MANY_SESSIONS),
    (ModelNotFoundError, ErrorCode.MODEL_NOT_FOUND),
    (ModelUnavailableError, ErrorCode.MODEL_UNAVAILABLE),
    (InvalidRequestError, ErrorCode.INVALID_VALUE),
)

_CRASH_MESSAGE = (
    "The worker serving this session stopped. It is being restarted; "
    "uncommitted audio will be transcribed again, nothing is lost."
)


def refusal(error: TheoError) -> ErrorEvent:
    """The event that refuses a session before it starts (bad model, language, no room)."""
    code = next(
        (code for kind, code in _REFUSALS if isinstance(error, kind)),
        ErrorCode.WORKER_UNAVAILABLE,
    )
    return ErrorEvent(code, error.message, recoverable=False, param=error.param)


def rejection(error: TheoError) -> ErrorEvent:
    """The event for one input a running session refused.

    An invalid frame or setting is dropped and the session goes on; input after close is
    refused for good; any other error means the session cannot go on (``is_fatal``).
    """
    if isinstance(error, ClientError):
        return ErrorEvent(error.code, error.message, recoverable=True)
    if isinstance(error, InvalidRequestError):
        return ErrorEvent(
            ErrorCode.INVALID_VALUE, error.message, recoverable=True, param=error.param
        )
    if isinstance(error, SessionClosedError):
        return ErrorEvent(ErrorCode.SESSION_CLOSED, error.message, recoverable=False)
    return failure(error)


def failure(error: TheoError) -> ErrorEvent:
    """The event of a session that cannot continue (its worker did not come back)."""
    return ErrorEvent(ErrorCode.WORKER_UNAVAILABLE, error.message, recoverable=False)


def speech_failure(error: TheoError, request_id: str) -> ErrorEvent:
    """A spoken reply the TTS engine refused or failed; the session goes on listening."""
    if isinstance(error, InvalidRequestError):
        code = ErrorCode.INVALID_VALUE
    elif isinstance(error, ModelUnavailableError):
        code = ErrorCode.MODEL_UNAVAILABLE
    else:
        code = ErrorCode.TTS_FAILED
    return ErrorEvent(
        code, error.message, recoverable=True, param=error.param, request_id=request_id
    )


def is_fatal(event: ErrorEvent) -> bool:
    """Whether the error ends the session (transports close with an internal-error code)."""
    return event.code == ErrorCode.WORKER_UNAVAILABLE


def worker_crashed(resume_segment_id: int) -> ErrorEvent:
    """The worker stream broke; the session recovers from ``resume_segment_id``."""
    return ErrorEvent(
        ErrorCode.WORKER_CRASHED,
        _CRASH_MESSAGE,
        recoverable=True,
        resume_segment_id=resume_segment_id,
    )


def setting_restored(error: InvalidRequestError, field: str, restored: object) -> ErrorEvent:
    """The engine refused ``field``; it was set back to ``restored`` and the speech resent."""
    # The value as the client wrote it, in the notation of its configure commands.
    value = json.dumps(restored)
    return _setting_refused(
        error, f"'{field}' is set back to {value}; the speech is transcribed with it."
    )


def setting_skipped(error: InvalidRequestError) -> ErrorEvent:
    """The engine refused something no setting explains; the speech since was given up."""
    return _setting_refused(
        error, "The speech sent since then could not be transcribed and is skipped."
    )


def _setting_refused(error: InvalidRequestError, outcome: str) -> ErrorEvent:
    return ErrorEvent(
        ErrorCode.INVALID_VALUE,
        f"The model refused a session setting: {error.message} {outcome}",
        recoverable=True,
        param=error.param,
    )
