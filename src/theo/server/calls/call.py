"""One phone call: a realtime session fed by a telephony transport, with no client.

The transport feeds decoded PCM16 without waiting (:meth:`Call.feed`, from a datagram
callback) or with backpressure (:meth:`Call.push`, from a TCP reader); one task pushes
the audio into the session in order, another publishes the session's events with the
call's id. :meth:`Call.end` finalizes the open segment, publishes the last finals, then
``call.ended``.

A call speaks too: ``tts.speak`` replies are played back into the transport by a
:class:`Playout`, 20 ms at a time; a cancelled reply's queued audio is dropped at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from theo.errors import InvalidRequestError, TheoError
from theo.logging import get_logger
from theo.server.calls.bus import Message
from theo.server.calls.playout import FrameSink, Playout
from theo.server.transports.websocket_codec import payload
from theo.session.core import RealtimeSession
from theo.session.events import CloseReason, OutputAudio, SpeakingEnded, SpeakingEndReason
from theo.session.slots import Slot

log = get_logger("calls")

_QUEUED_FRAMES = 500
"""Frames (about 10 s of 20 ms packets) a call holds while its session catches up."""


class CallTransport(enum.StrEnum):
    """How the call's audio arrives."""

    RTP = "rtp"
    AUDIOSOCKET = "audiosocket"


class CallEndReason(enum.StrEnum):
    """Why a call ended (``call.ended.reason``)."""

    HANGUP = "hangup"
    """AudioSocket: the PBX sent a hangup frame or closed the connection."""
    BYE = "bye"
    """RTP: the sender sent an RTCP BYE."""
    IDLE_TIMEOUT = "idle_timeout"
    """No packet or frame for ``THEO_TELEPHONY__IDLE_TIMEOUT_MS``."""
    NO_SPEECH = "no_speech"
    """The call's session closed on its own timeouts (no speech for a long time)."""
    REFUSED = "refused"
    """Not served: ``THEO_TELEPHONY__MAX_CALLS`` or the session limit was reached, or no
    model can take it."""
    ERROR = "error"
    """A protocol error on the transport, or the session failed."""
    SHUTDOWN = "shutdown"
    """The server is stopping."""


@dataclass(frozen=True, slots=True)
class CallInfo:
    """What identifies a call and how its audio is encoded."""

    call_id: str
    transport: CallTransport
    remote: str
    codec: str
    sample_rate: int
    model: str
    language: str | None
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def describe(self) -> Message:
        """The call's fields as ``call.started`` and ``GET /v1/calls`` show them."""
        return {
            "call_id": self.call_id,
            "transport": str(self.transport),
            "remote": self.remote,
            "codec": self.codec,
            "sample_rate": self.sample_rate,
            "model": self.model,
            "language": self.language,
            "audio_quality": "telephony",
            "started_at": self.started_at.isoformat(),
        }


Statistics = Callable[[], dict[str, Any]]
"""The transport's statistics of a call, read when it is shown or ends."""


class Call:
    """A session fed by a transport; ends once, publishing ``call.ended`` last.

    Args:
        info: the call's identity and audio format.
        session: its session (not started yet).
        slot: its place among the server's sessions, released when it ends.
        publish: where its events go (the call event bus).
        statistics: the transport's per-call statistics.
        on_ended: told when the call has ended (the registry forgets it).
        send_frame: the transport's sender of 20 ms reply frames (PCM16 at the call's
            rate); None for a call that cannot speak.
    """

    def __init__(
        self,
        info: CallInfo,
        session: RealtimeSession,
        slot: Slot,
        publish: Callable[[Message], None],
        statistics: Statistics,
        on_ended: Callable[[Call, CallEndReason], None],
        send_frame: FrameSink | None = None,
    ) -> None:
        self.info = info
        self.session = session
        self._slot = slot
        self._publish = publish
        self._statistics = statistics
        self._on_ended = on_ended
        self._audio: asyncio.Queue[bytes | None] = asyncio.Queue(_QUEUED_FRAMES)
        self._tasks: list[asyncio.Task[None]] = []
        self._started = time.monotonic()
        self.last_activity = self._started
        """Monotonic time of the last packet or frame (for the idle timeout)."""
        self.frames_dropped = 0
        self.dtmf_digits = 0
        self._end_reason: CallEndReason | None = None
        self._ended = asyncio.Event()
        self.playout = (
            Playout(info.sample_rate, send_frame, info.call_id) if send_frame is not None else None
        )

    @property
    def call_id(self) -> str:
        """The call's id."""
        return self.info.call_id

    @property
    def duration_s(self) -> float:
        """Seconds since the call started."""
        return time.monotonic() - self._started

    @property
    def ending(self) -> bool:
        """Whether the call is ending or ended."""
        return self._end_reason is not None

    async def start(self) -> None:
        """Start the session and announce the call (``call.started``).

        Raises:
            ModelUnavailableError: no worker of the call's model is ready.
        """
        await self.session.start()
        self._publish({"type": "call.started", **self.info.describe()})
        log.info("call_started", **self.info.describe())
        self._tasks = [
            asyncio.create_task(self._ingest(), name=f"call-in-{self.call_id}"),
            asyncio.create_task(self._relay(), name=f"call-out-{self.call_id}"),
        ]

    def touch(self) -> None:
        """A packet or frame arrived (even one that carried no audio)."""
        self.last_activity = time.monotonic()

    def feed(self, pcm16: bytes) -> None:
        """Queue PCM16 audio without waiting; a frame that does not fit is dropped."""
        if self.ending:
            return
        try:
            self._audio.put_nowait(pcm16)
        except asyncio.QueueFull:
            self.frames_dropped += 1

    async def push(self, pcm16: bytes) -> None:
        """Queue PCM16 audio, waiting while the queue is full (backpressure)."""
        if not self.ending:
            await self._audio.put(pcm16)

    def dtmf(self, digit: str) -> None:
        """Publish a key the caller pressed (``call.dtmf``)."""
        self.dtmf_digits += 1
        self._publish({"type": "call.dtmf", "call_id": self.call_id, "digit": digit})

    async def speak(self, fields: Message) -> None:
        """Speak a reply into the call (``tts.speak``); its events follow on the bus.

        Raises:
            InvalidRequestError: a field cannot be used (names it), or the call's
                transport cannot carry audio back.
            ClientError: the text-to-speech model has no ready worker.
        """
        if self.playout is None:
            raise InvalidRequestError("This call cannot carry audio back.", "call_id")
        await self.session.speak(fields)

    def describe(self) -> Message:
        """The call as ``GET /v1/calls`` lists it."""
        return {
            **self.info.describe(),
            "state": str(self.session.state),
            "duration_ms": round((time.monotonic() - self._started) * 1000),
            "statistics": self.statistics(),
        }

    def statistics(self) -> dict[str, Any]:
        """The transport's statistics and the call's own counters."""
        return {
            **self._statistics(),
            "frames_dropped": self.frames_dropped,
            "dtmf_digits": self.dtmf_digits,
        }

    async def end(self, reason: CallEndReason) -> None:
        """Finalize the open segment, publish its final, then ``call.ended`` (once)."""
        if self._end_reason is not None:
            await self._ended.wait()
            return
        self._end_reason = reason
        try:
            await self._finish()
        finally:
            self._slot.release()
            statistics = self.statistics()
            duration_ms = round((time.monotonic() - self._started) * 1000)
            self._publish(
                {
                    "type": "call.ended",
                    "call_id": self.call_id,
                    "reason": str(reason),
                    "duration_ms": duration_ms,
                    "statistics": statistics,
                }
            )
            log.info(
                "call_ended",
                call_id=self.call_id,
                reason=str(reason),
                duration_ms=duration_ms,
                **statistics,
            )
            self._ended.set()
            self._on_ended(self, reason)

    async def _finish(self) -> None:
        ingest = self._tasks[0] if self._tasks else None
        if ingest is not None and not ingest.done():
            await self._audio.put(None)  # the audio queued so far is transcribed first
            await asyncio.wait({ingest})
        await self.session.close(CloseReason.CALL_ENDED)
        await self.session.abort()
        if self.playout is not None:
            await self.playout.close()
        relay = self._tasks[1] if len(self._tasks) > 1 else None
        if relay is not None and relay is not asyncio.current_task():
            await asyncio.wait({relay})

    async def _ingest(self) -> None:
        while (pcm16 := await self._audio.get()) is not None:
            try:
                await self.session.push(pcm16)
            except TheoError as exc:
                self.session.report(exc)
            if not self.session.accepting:
                break
        # Unblock a feeder waiting on a full queue once the session takes no more audio.
        while not self._audio.empty():
            self._audio.get_nowait()

    def _play(self, event: object) -> None:
        if self.playout is None:
            return
        if isinstance(event, OutputAudio):
            self.playout.play(event.request_id, event.audio)
        elif isinstance(event, SpeakingEnded) and event.reason != SpeakingEndReason.DONE:
            self.playout.drop(event.request_id)  # cancelled: stop playing at once

    async def _relay(self) -> None:
        async for event in self.session:
            self._play(event)
            body = payload(event)
            if body is not None:
                kind = body.pop("type")
                self._publish({"type": kind, "call_id": self.call_id, **body})
        if self._end_reason is None:
            # The session ended on its own: its timeouts or a failed worker.
            reason = (
                CallEndReason.ERROR if self.session.failure is not None else CallEndReason.NO_SPEECH
            )
            with contextlib.suppress(Exception):
                await self.end(reason)
