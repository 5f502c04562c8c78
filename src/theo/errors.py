"""Typed domain errors. They are mapped to HTTP status codes only at the server edge."""

from __future__ import annotations


class TheoError(Exception):
    """Base class of every error Theo raises on purpose.

    Attributes:
        retryable: whether the same request may succeed if sent again later.
    """

    retryable: bool = False
    param: str | None = None

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequestError(TheoError):
    """A request field has an invalid value."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


class AudioFormatError(InvalidRequestError):
    """The audio could not be decoded, is empty, or holds no signal."""

    def __init__(self, message: str) -> None:
        super().__init__(message, param="file")


class FileTooLargeError(TheoError):
    """The upload exceeds the configured size limit."""

    param = "file"


class AudioTooLongError(TheoError):
    """The audio lasts longer than the configured maximum duration."""

    param = "file"


class BodyReadTimeoutError(TheoError):
    """The client stopped sending the request body before it was complete."""


class AuthenticationError(TheoError):
    """The request carries no API key, or an unknown one."""


class ForbiddenOriginError(TheoError):
    """A browser request from an origin, or for a host name, that is not allowed."""


class ModelNotFoundError(TheoError):
    """No installed model has the requested name."""

    def __init__(self, name: str, available: list[str]) -> None:
        listing = ", ".join(sorted(available)) if available else "none"
        super().__init__(f"Model '{name}' is not installed. Installed models: {listing}.")
        self.name = name
        self.available = available


class CapabilityError(InvalidRequestError):
    """The model exists but cannot do what was asked (e.g. translate with an English-only model)."""


class ModelUnavailableError(TheoError):
    """The model's worker is loading or restarting; try again shortly."""

    retryable = True


class WorkerCrashError(TheoError):
    """The worker died or broke the connection while serving a request."""

    retryable = True


class WorkerTimeoutError(TheoError):
    """The worker did not finish in time."""

    retryable = True


class InferenceError(TheoError):
    """The engine failed on this request."""


class ManifestError(TheoError):
    """A ``theo.yaml`` manifest is missing or invalid."""


class CatalogError(TheoError):
    """The catalog does not know a model, or an entry is invalid."""


class DownloadError(TheoError):
    """Fetching a model's files from a source failed."""

    retryable = True


class ChecksumError(TheoError):
    """A downloaded file does not match the sha256 recorded in the catalog."""
