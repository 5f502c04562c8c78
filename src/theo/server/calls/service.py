"""Telephony in the server's lifespan: the call registry, its event bus and the listeners."""

from __future__ import annotations

import asyncio

from starlette.datastructures import State

from theo.logging import get_logger
from theo.server.calls.bus import CallEventBus
from theo.server.calls.call import CallEndReason
from theo.server.calls.registry import CallRegistry
from theo.server.state import AppState
from theo.server.transports.audiosocket import AudioSocketServer
from theo.server.transports.rtp import RtpListener

log = get_logger("calls")


class Telephony:
    """Starts the RTP listener and the AudioSocket server that are configured; ends calls
    on shutdown."""

    def __init__(self, state: AppState, app_state: State) -> None:
        self.settings = state.settings.telephony
        self._host = state.settings.host
        self._state = state
        self.registry = CallRegistry(state, app_state, CallEventBus())
        self.rtp: RtpListener | None = None
        self.audiosocket: AudioSocketServer | None = None

    async def start(self) -> None:
        """Bind the configured ports (an unset port leaves its transport off)."""
        if self.settings.rtp_port is not None:
            self.rtp = RtpListener(self.registry, self.settings, self._state.metrics)
            await self.rtp.start(self._host, self.settings.rtp_port)
        if self.settings.audiosocket_port is not None:
            self.audiosocket = AudioSocketServer(self.registry, self.settings)
            await self.audiosocket.start(self._host, self.settings.audiosocket_port)

    async def stop(self) -> None:
        """Stop listening and end every call, finals first (within the shutdown timeout)."""
        if self.rtp is not None:
            await self.rtp.stop()
        if self.audiosocket is not None:
            self.audiosocket.stop_accepting()
        timeout_s = max(1.0, float(self._state.settings.shutdown_timeout_s))
        try:
            await asyncio.wait_for(self.registry.end_all(CallEndReason.SHUTDOWN), timeout_s)
        except TimeoutError:
            log.warning("calls_not_finalized", timeout_s=timeout_s)
        if self.audiosocket is not None:
            await self.audiosocket.stop()
