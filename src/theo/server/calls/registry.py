"""The calls being served: admission (call cap, session slots, model), lookup, shutdown."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.datastructures import State

from theo.config import TelephonySettings
from theo.errors import InvalidRequestError, ModelNotFoundError, ModelUnavailableError
from theo.logging import get_logger
from theo.server.calls.bus import CallEventBus
from theo.server.calls.call import Call, CallEndReason, CallInfo, CallTransport, Statistics
from theo.server.calls.playout import FrameSink
from theo.server.state import AppState
from theo.server.transports.admission import prepare, take_slot
from theo.session.config import (
    MAX_HOLD_TIMEOUT_MS,
    MAX_INIT_TIMEOUT_MS,
    MAX_SILENCE_TIMEOUT_MS,
)
from theo.session.core import RealtimeSession
from theo.session.errors import SessionLimitError
from theo.types import ModelType
from theo.workers.routing import usable

log = get_logger("calls")

# A call ends when its transport says so (hangup, BYE, idle); its session's own timeouts
# are only a last resort for a line held open in silence.
_CALL_TIMEOUTS = {
    "init_timeout_ms": MAX_INIT_TIMEOUT_MS,
    "silence_timeout_ms": MAX_SILENCE_TIMEOUT_MS,
    "hold_timeout_ms": MAX_HOLD_TIMEOUT_MS,
}


class CallRegistry:
    """Opens calls within the limits, keeps the live ones, ends them all on shutdown."""

    def __init__(self, state: AppState, app_state: State, bus: CallEventBus) -> None:
        self._state = state
        self._app_state = app_state
        self.bus = bus
        self._settings: TelephonySettings = state.settings.telephony
        self._calls: dict[str, Call] = {}
        self._ending: set[asyncio.Task[None]] = set()

    @property
    def calls(self) -> list[Call]:
        """The calls being served, oldest first."""
        return list(self._calls.values())

    def get(self, call_id: str) -> Call | None:
        """The live call with this id, if any."""
        return self._calls.get(call_id)

    async def open(
        self,
        *,
        call_id: str,
        transport: CallTransport,
        remote: str,
        codec: str,
        sample_rate: int,
        statistics: Statistics,
        send_frame: FrameSink | None = None,
    ) -> Call | None:
        """A started call, or None when it is refused (counted and published).

        ``send_frame`` carries the call's spoken replies back (20 ms of PCM16 at
        ``sample_rate`` per call); without it the call only listens.

        Refused: ``THEO_TELEPHONY__MAX_CALLS`` calls are live, the server's session limit
        is reached, no served model can stream, or the model's worker is not ready.
        """
        refusal = self._over_limit(call_id)
        if refusal is not None:
            self.refuse(call_id, transport, remote, refusal)
            return None
        try:
            slot = take_slot(self._app_state, self._state.settings.session.max_sessions)
        except SessionLimitError:
            self.refuse(call_id, transport, remote, "too many sessions")
            return None
        try:
            model = self._model()
            context, config = prepare(self._state, model, self._settings.language or None)
            config = config.updated(
                {
                    **_CALL_TIMEOUTS,
                    "input_sample_rate": sample_rate,
                    "output_sample_rate": sample_rate,
                    "hot_words": self._settings.hot_words,
                    "barge_in": self._settings.barge_in,
                }
            )
        except (ModelNotFoundError, InvalidRequestError) as exc:
            slot.release()
            self.refuse(call_id, transport, remote, str(exc))
            return None
        session = RealtimeSession(call_id, context, config, paced_by_source=True)
        info = CallInfo(call_id, transport, remote, codec, sample_rate, model, config.language)
        call = Call(info, session, slot, self.bus.publish, statistics, self._forget, send_frame)
        self._calls[call_id] = call
        try:
            await call.start()
        except ModelUnavailableError as exc:
            await session.abort()
            slot.release()
            self._calls.pop(call_id, None)
            self.refuse(call_id, transport, remote, str(exc))
            return None
        self._state.metrics.call_started(str(transport))
        self._state.metrics.session_opened()
        return call

    def _over_limit(self, call_id: str) -> str | None:
        if call_id in self._calls:
            return "duplicate call id"
        if len(self._calls) >= self._settings.max_calls:
            return "too many calls"
        return None

    def end(self, call: Call, reason: CallEndReason) -> None:
        """End ``call`` in the background (from a callback that cannot wait)."""
        task = asyncio.create_task(call.end(reason), name=f"call-end-{call.call_id}")
        self._ending.add(task)
        task.add_done_callback(self._ending.discard)

    async def end_all(self, reason: CallEndReason = CallEndReason.SHUTDOWN) -> None:
        """End every live call (finals first) and wait for the calls already ending."""
        await asyncio.gather(
            *(call.end(reason) for call in self.calls), *self._ending, return_exceptions=True
        )

    def describe(self) -> list[dict[str, Any]]:
        """The live calls as ``GET /v1/calls`` lists them."""
        return [call.describe() for call in self.calls]

    def _model(self) -> str:
        """The telephony model: the configured one, else the first ready streaming model."""
        if self._settings.model:
            return self._settings.model
        streaming = [
            name
            for name, model in self._state.models.items()
            if model.manifest.type is ModelType.STT and model.manifest.capabilities.streaming
        ]
        manager = self._state.manager
        for name in streaming:
            if any(usable(w) for w in manager.workers_for(name)):
                return name
        if streaming:
            return streaming[0]
        raise InvalidRequestError("No served model can transcribe calls (none can stream).")

    def refuse(self, call_id: str, transport: CallTransport, remote: str, why: str) -> None:
        """Count and publish a refused call (``call.ended`` with reason ``refused``)."""
        log.warning(
            "call_refused", call_id=call_id, transport=str(transport), remote=remote, why=why
        )
        self._state.metrics.call_ended(str(transport), str(CallEndReason.REFUSED), was_active=False)
        self.bus.publish(
            {
                "type": "call.ended",
                "call_id": call_id,
                "transport": str(transport),
                "remote": remote,
                "reason": str(CallEndReason.REFUSED),
                "message": why,
            }
        )

    def _forget(self, call: Call, reason: CallEndReason) -> None:
        if self._calls.get(call.call_id) is call:
            del self._calls[call.call_id]
        metrics = self._state.metrics
        metrics.call_ended(str(call.info.transport), str(reason))
        metrics.session_closed()
        metrics.session_duration(call.duration_s)
