"""The lifecycle of one realtime session: states, legal transitions and per-state timeouts.

INIT -> ACTIVE <-> SILENCE -> HOLD -> CLOSING -> CLOSED. Speech moves a session to ACTIVE,
the end of speech to SILENCE; long silence moves it to HOLD (a call on hold) and a hold
that lasts too long closes it. The machine is synchronous and owns no timer: it knows
when the current state's timeout falls due (``deadline``), and the session's timer task
acts on it. Illegal transitions raise; CLOSED is terminal.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final


class SessionState(enum.StrEnum):
    """Where a realtime session is in its life."""

    INIT = "init"
    """Connected; no speech heard yet."""
    ACTIVE = "active"
    """Speech is being transcribed."""
    SILENCE = "silence"
    """The last speech ended; waiting for more."""
    HOLD = "hold"
    """Silence lasted ``silence`` seconds (a call on hold, a muted microphone)."""
    CLOSING = "closing"
    """Finishing: outstanding finals are sent, then the client is given time to leave."""
    CLOSED = "closed"
    """Over. Terminal."""


_LEGAL: Final[Mapping[SessionState, frozenset[SessionState]]] = MappingProxyType(
    {
        SessionState.INIT: frozenset(
            {SessionState.ACTIVE, SessionState.CLOSING, SessionState.CLOSED}
        ),
        SessionState.ACTIVE: frozenset(
            {SessionState.SILENCE, SessionState.CLOSING, SessionState.CLOSED}
        ),
        SessionState.SILENCE: frozenset(
            {SessionState.ACTIVE, SessionState.HOLD, SessionState.CLOSING, SessionState.CLOSED}
        ),
        SessionState.HOLD: frozenset(
            {SessionState.ACTIVE, SessionState.CLOSING, SessionState.CLOSED}
        ),
        SessionState.CLOSING: frozenset({SessionState.CLOSED}),
        SessionState.CLOSED: frozenset(),
    }
)

TIMEOUT_TARGETS: Final[Mapping[SessionState, SessionState]] = MappingProxyType(
    {
        SessionState.INIT: SessionState.CLOSED,
        SessionState.SILENCE: SessionState.HOLD,
        SessionState.HOLD: SessionState.CLOSING,
        SessionState.CLOSING: SessionState.CLOSED,
    }
)
"""The state a timed-out state moves to; states not listed never time out."""


class IllegalSessionTransitionError(RuntimeError):
    """A state change the session lifecycle does not allow."""


@dataclass(frozen=True, slots=True)
class SessionTimeouts:
    """Seconds a session may stay in each timed state."""

    init_s: float = 30.0
    """INIT: no speech since the session opened -> CLOSED."""
    silence_s: float = 30.0
    """SILENCE: no speech since the last segment -> HOLD."""
    hold_s: float = 300.0
    """HOLD: still no speech -> CLOSING."""
    closing_s: float = 2.0
    """CLOSING: after ``session.closed``, time for the client to close the socket."""

    def for_state(self, state: SessionState) -> float | None:
        """The timeout of ``state``, or None when it has none."""
        return {
            SessionState.INIT: self.init_s,
            SessionState.SILENCE: self.silence_s,
            SessionState.HOLD: self.hold_s,
            SessionState.CLOSING: self.closing_s,
        }.get(state)


class SessionStateMachine:
    """The current state, when it was entered, and when its timeout falls due.

    Args:
        timeouts: per-state timeouts; may be replaced later (``session.configure``).
        clock: monotonic seconds; injectable for tests.
    """

    def __init__(
        self,
        timeouts: SessionTimeouts | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self._state = SessionState.INIT
        self._timeouts = timeouts or SessionTimeouts()
        self._timer_started: float | None = clock()

    @property
    def state(self) -> SessionState:
        """The current state."""
        return self._state

    @property
    def timeouts(self) -> SessionTimeouts:
        """The timeouts in force."""
        return self._timeouts

    @timeouts.setter
    def timeouts(self, timeouts: SessionTimeouts) -> None:
        # A running timer keeps its start: a shorter timeout may fall due at once.
        self._timeouts = timeouts

    def can_move_to(self, new: SessionState) -> bool:
        """Whether ``new`` is a legal next state."""
        return new in _LEGAL[self._state]

    def transition(self, new: SessionState, *, start_timer: bool = True) -> None:
        """Move to ``new`` and (unless ``start_timer`` is False) start its timeout.

        Raises:
            IllegalSessionTransitionError: ``new`` is not reachable from the current state.
        """
        if not self.can_move_to(new):
            raise IllegalSessionTransitionError(f"{self._state} -> {new} is illegal")
        self._state = new
        self._timer_started = self._clock() if start_timer else None

    def start_timer(self) -> None:
        """Start the current state's timeout now (used when entry deferred it)."""
        self._timer_started = self._clock()

    def deadline(self) -> float | None:
        """Clock time at which the current state times out; None if it cannot now."""
        timeout = self._timeouts.for_state(self._state)
        if timeout is None or self._timer_started is None:
            return None
        return self._timer_started + timeout

    def expired(self) -> SessionState | None:
        """The state to move to if the current state's timeout has passed, else None."""
        deadline = self.deadline()
        if deadline is None or self._clock() < deadline:
            return None
        return TIMEOUT_TARGETS[self._state]
