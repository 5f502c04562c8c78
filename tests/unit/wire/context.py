"""A servicer context that records how a worker ended a call."""

from __future__ import annotations

from collections.abc import Sequence

import grpc


class Aborted(Exception):  # noqa: N818 - named for what happened to the call
    """Raised by :meth:`RecordingContext.abort`, as grpc raises on a real one."""


class RecordingContext:
    """The part of ``grpc.aio.ServicerContext`` a servicer uses to end a call."""

    def __init__(self) -> None:
        self.code: grpc.StatusCode | None = None
        self.details = ""
        self.trailers: tuple[tuple[str, str], ...] = ()

    def set_trailing_metadata(self, trailers: Sequence[tuple[str, str]]) -> None:
        self.trailers = tuple(trailers)

    async def abort(self, code: grpc.StatusCode, details: str = "") -> None:
        self.code, self.details = code, details
        raise Aborted

    def as_rpc_error(self) -> grpc.aio.AioRpcError:
        """What the client of the call receives."""
        assert self.code is not None, "the call was not aborted"
        return grpc.aio.AioRpcError(
            self.code, grpc.aio.Metadata(), grpc.aio.Metadata(*self.trailers), self.details
        )
