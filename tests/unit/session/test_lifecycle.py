"""The session manager's pure parts: state machine, ring buffer, WAL and backpressure."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from theo.errors import InvalidRequestError
from theo.session.backpressure import BackpressureController
from theo.session.config import SessionConfig
from theo.session.ring_buffer import BYTES_PER_SECOND, RingBuffer, RingBufferFullError
from theo.session.state import (
    IllegalSessionTransitionError,
    SessionState,
    SessionStateMachine,
    SessionTimeouts,
)
from theo.session.timer import StateTimer
from theo.session.wal import SessionWAL


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# ---------------------------------------------------------------- state machine

S = SessionState


def test_default_timeouts_are_the_seeds() -> None:
    timeouts = SessionConfig().timeouts()
    assert timeouts == SessionTimeouts(init_s=30.0, silence_s=30.0, hold_s=300.0, closing_s=2.0)
    assert [timeouts.for_state(s) for s in S] == [30.0, None, 30.0, 300.0, 2.0, None]


def test_a_session_walks_through_every_state_on_timeouts() -> None:
    clock = FakeClock()
    machine = SessionStateMachine(SessionTimeouts(1, 2, 3, 4), clock)
    assert machine.state == S.INIT and machine.deadline() == 1001.0
    machine.transition(S.ACTIVE)
    assert machine.deadline() is None and machine.expired() is None  # ACTIVE never times out
    clock.advance(100)
    machine.transition(S.SILENCE)
    clock.advance(1.999)
    assert machine.expired() is None
    clock.advance(0.001)
    assert machine.expired() == S.HOLD
    machine.transition(S.HOLD)
    clock.advance(3)
    assert machine.expired() == S.CLOSING
    machine.transition(S.CLOSING, start_timer=False)
    clock.advance(60)
    assert machine.deadline() is None  # CLOSING's timer waits for session.closed
    machine.start_timer()
    clock.advance(4)
    assert machine.expired() == S.CLOSED
    machine.transition(S.CLOSED)
    assert machine.deadline() is None


def test_init_times_out_straight_to_closed() -> None:
    clock = FakeClock()
    machine = SessionStateMachine(SessionTimeouts(init_s=1), clock)
    clock.advance(1)
    assert machine.expired() == S.CLOSED


def test_speech_resumes_from_silence_and_hold() -> None:
    machine = SessionStateMachine(clock=FakeClock())
    for state in (S.ACTIVE, S.SILENCE, S.ACTIVE, S.SILENCE, S.HOLD, S.ACTIVE):
        machine.transition(state)
    assert machine.state == S.ACTIVE


@pytest.mark.parametrize(
    ("path", "illegal"),
    [
        ([], S.SILENCE),
        ([], S.HOLD),
        ([S.ACTIVE], S.HOLD),
        ([S.ACTIVE], S.INIT),
        ([S.ACTIVE, S.SILENCE, S.HOLD], S.SILENCE),
        ([S.CLOSING], S.ACTIVE),
        ([S.CLOSED], S.ACTIVE),
        ([S.CLOSED], S.CLOSING),
        ([S.CLOSED], S.CLOSED),
    ],
)
def test_illegal_transitions_fail_loudly(path: list[SessionState], illegal: SessionState) -> None:
    machine = SessionStateMachine(clock=FakeClock())
    for state in path:
        machine.transition(state)
    assert not machine.can_move_to(illegal)
    with pytest.raises(IllegalSessionTransitionError):
        machine.transition(illegal)


def test_every_state_can_close_and_closed_is_terminal() -> None:
    for path in ([], [S.ACTIVE], [S.ACTIVE, S.SILENCE], [S.ACTIVE, S.SILENCE, S.HOLD]):
        machine = SessionStateMachine(clock=FakeClock())
        for state in path:
            machine.transition(state)
        machine.transition(S.CLOSING)
        machine.transition(S.CLOSED)
        assert all(not machine.can_move_to(s) for s in S)


def test_new_timeouts_apply_to_the_running_state() -> None:
    clock = FakeClock()
    machine = SessionStateMachine(clock=clock)
    machine.transition(S.ACTIVE)
    machine.transition(S.SILENCE)
    clock.advance(5)
    assert machine.expired() is None
    machine.timeouts = SessionTimeouts(silence_s=5)
    assert machine.expired() == S.HOLD


def test_timeouts_are_configured_in_ms_with_a_one_second_floor() -> None:
    config = SessionConfig().updated(
        {
            "init_timeout_ms": 1500,
            "silence_timeout_ms": 1000,
            "hold_timeout_ms": 2000,
            "closing_timeout_ms": 1000,
        }
    )
    assert config.timeouts() == SessionTimeouts(1.5, 1.0, 2.0, 1.0)
    for field in ("init_timeout_ms", "silence_timeout_ms", "hold_timeout_ms", "closing_timeout_ms"):
        with pytest.raises(InvalidRequestError) as info:
            SessionConfig().updated({field: 999})
        assert info.value.param == field


# ---------------------------------------------------------------- ring buffer


def _pcm(seed: int, size: int) -> bytes:
    return bytes((seed + i) % 251 for i in range(size))


def test_ring_buffer_is_allocated_once_for_60_seconds() -> None:
    ring = RingBuffer.for_seconds(60)
    assert ring.capacity == 60 * BYTES_PER_SECOND == 1_920_000
    assert ring.free == ring.capacity and ring.usage == 0.0
    buffer = ring._buffer  # the same bytearray object for the whole session
    for i in range(200):
        ring.write(_pcm(i, 32_000))
        ring.commit(ring.written)
    assert ring._buffer is buffer and len(buffer) == ring.capacity


def test_ring_buffer_reads_across_the_wrap() -> None:
    ring = RingBuffer(100)
    ring.write(_pcm(0, 70))
    ring.commit(70)
    start = ring.write(_pcm(7, 60))  # 30 bytes at the end, 30 at the start
    assert start == 70 and ring.written == 130
    assert ring.read(70, 130) == _pcm(7, 60)
    assert ring.read(95, 105) == _pcm(7, 60)[25:35]


def test_the_read_fence_protects_uncommitted_audio() -> None:
    ring = RingBuffer(100)
    ring.write(_pcm(1, 60))
    ring.commit(20)
    assert ring.fence == 20 and ring.uncommitted == 40 and ring.free == 60
    with pytest.raises(RingBufferFullError):
        ring.write(_pcm(2, 61))
    ring.write(_pcm(2, 60))  # overwrites only the committed first 20 bytes
    assert ring.usage == 1.0
    assert ring.read(20, 60) == _pcm(1, 60)[20:]
    with pytest.raises(ValueError, match="outside"):
        ring.read(0, 10)  # committed, possibly overwritten
    ring.commit(10)  # the fence never moves back
    assert ring.fence == 20
    ring.commit(10_000)  # nor past the written audio
    assert ring.fence == 120 and ring.free == 100


# ---------------------------------------------------------------- WAL


def test_wal_records_the_last_commit_and_detects_duplicates() -> None:
    wal = SessionWAL(clock=lambda: 1_700_000_000.25)
    assert wal.last.segment_id == 0 and wal.resume_segment_id == 1
    checkpoint = wal.commit(1, 64_000)
    assert checkpoint == wal.last
    assert (checkpoint.segment_id, checkpoint.buffer_offset) == (1, 64_000)
    assert checkpoint.timestamp_ms == 1_700_000_000_250
    assert wal.is_committed(1) and not wal.is_committed(2)
    assert wal.resume_segment_id == 2
    with pytest.raises(ValueError, match="not after"):
        wal.commit(1, 70_000)  # a segment id never repeats
    with pytest.raises(ValueError, match="not after"):
        wal.commit(2, 1_000)  # nor does the offset go back


# ---------------------------------------------------------------- backpressure


def _stream(
    controller: BackpressureController, clock: FakeClock, seconds: float, speed: float
) -> tuple[list[int], list[int], float]:
    """Send ``seconds`` of 20 ms frames at ``speed`` x real time."""
    rate_limits: list[int] = []
    drops: list[int] = []
    accepted = 0.0
    for _ in range(round(seconds / 0.02)):
        admission = controller.admit(0.02)
        if admission.accepted:
            accepted += 0.02
        if admission.rate_limit_ms is not None:
            rate_limits.append(admission.rate_limit_ms)
        if admission.dropped_ms is not None:
            drops.append(admission.dropped_ms)
        clock.advance(0.02 / speed)
    return rate_limits, drops, accepted


def test_real_time_with_jitter_is_never_limited() -> None:
    clock = FakeClock()
    controller = BackpressureController(clock=clock)
    rate_limits, drops, accepted = _stream(controller, clock, 60, 1.0)
    # a 1.5 s network stall, then the backlog arrives at once
    clock.advance(1.5)
    more = _stream(controller, clock, 1.5, 1000.0)
    assert rate_limits == drops == [] and more[0] == more[1] == []
    assert accepted == pytest.approx(60.0)


def test_ten_times_real_time_is_rate_limited_then_dropped() -> None:
    clock = FakeClock()
    controller = BackpressureController(max_backlog_s=10, rate_limit_after_s=2, clock=clock)
    rate_limits, drops, accepted = _stream(controller, clock, 100, 10.0)
    # 100 s of audio in 10 s: real time plus a backlog of 5-10 s is kept
    assert 10 + 5 - 0.5 <= accepted <= 10 + 10 + 0.1
    assert rate_limits and rate_limits[0] >= 2000
    assert 8 <= len(rate_limits) <= 11  # about one a second
    assert drops and sum(drops) + (controller.flush() or 0) == pytest.approx(
        (100 - accepted) * 1000, abs=25
    )
    assert controller.dropped_total_ms == pytest.approx((100 - accepted) * 1000, abs=1)


def test_drops_come_in_runs_so_kept_audio_is_contiguous() -> None:
    clock = FakeClock()
    controller = BackpressureController(max_backlog_s=4, clock=clock)
    verdicts = []
    for _ in range(1500):
        verdicts.append(controller.admit(0.02).accepted)
        clock.advance(0.002)
    switches = sum(a != b for a, b in itertools.pairwise(verdicts))
    assert switches <= 8  # not every other frame


def test_idle_time_earns_no_credit() -> None:
    clock = FakeClock()
    controller = BackpressureController(max_backlog_s=10, clock=clock)
    clock.advance(600)  # ten minutes on hold
    _, drops, accepted = _stream(controller, clock, 30, 100.0)
    assert drops and accepted < 11


# ---------------------------------------------------------------- timer


async def test_the_timer_acts_on_deadlines_and_on_changed_timeouts() -> None:
    machine = SessionStateMachine(SessionTimeouts(init_s=60, silence_s=0.05, hold_s=60))
    fired: list[tuple[SessionState, SessionState]] = []
    held, done = asyncio.Event(), asyncio.Event()

    async def on_timeout(state: SessionState, target: SessionState) -> None:
        fired.append((state, target))
        machine.transition(target)
        (done if target == S.CLOSED else held).set()

    timer = StateTimer(machine, on_timeout)
    timer.start("timer-test")
    machine.transition(S.ACTIVE)
    timer.poke()
    machine.transition(S.SILENCE)  # 50 ms to HOLD
    timer.poke()
    await asyncio.wait_for(held.wait(), 2)
    assert machine.state == S.HOLD
    machine.timeouts = SessionTimeouts(init_s=60, silence_s=60, hold_s=0.05, closing_s=0.05)
    timer.poke()  # the hold that had 60 s left now has 50 ms
    await asyncio.wait_for(done.wait(), 2)
    assert fired == [(S.SILENCE, S.HOLD), (S.HOLD, S.CLOSING), (S.CLOSING, S.CLOSED)]
    await timer.stop()
