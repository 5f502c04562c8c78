"""Lifecycle helpers shared by the WebSocket transports."""

from __future__ import annotations

import asyncio

from theo.logging import get_logger

log = get_logger("server.realtime")


def being_cancelled() -> bool:
    """Whether this task itself is being cancelled (the server is shutting down)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


async def finish_sending(sender: asyncio.Task[None]) -> None:
    """Wait for the sender to send what is left; cancelled with the caller."""
    try:
        await asyncio.shield(sender)
    except asyncio.CancelledError:
        sender.cancel()
        raise
    except Exception as exc:  # the session must still be closed and counted
        log.error("session_send_failed", exc_info=exc)
