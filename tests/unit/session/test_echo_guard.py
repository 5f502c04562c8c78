"""EchoGuard on real speech: a Kokoro TTS reply heard back through a simulated echo path.

The agent's reply is ``pt_br_speech.wav`` (11.4 s of Kokoro-82M speech, what a session
really plays); the caller is ``en_short.wav`` (LibriVox, "he was not an ill disposed young
man") from its speech onset. The echo path is a small loudspeaker (200-3400 Hz band-pass)
with 30 ms of decaying reflections, delayed and attenuated, plus white mic noise at -60
dBFS. The reference is sent as a session sends it: 200 ms chunks, up to 1 s ahead of the
playback clock, each with the mic position at the moment it was sent.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import numpy.typing as npt
import pytest
from scipy import signal

from tests.helpers.audio import read_wav
from tests.helpers.server import FIXTURES
from theo.session.echo_guard import EchoGuard

Float = npt.NDArray[np.float64]
Int16 = npt.NDArray[np.int16]

NOISE_DBFS = -60.0
CALLER_AT_S = 4.0


@cache
def _speech(name: str, rate: int) -> Float:
    samples, source_rate = read_wav(FIXTURES / name)
    audio = samples.astype(np.float64)
    return signal.resample_poly(audio, rate, source_rate) if rate != source_rate else audio


def _frame_db(audio: Float, rate: int) -> Float:
    n = rate // 50
    frames = audio[: audio.size // n * n].reshape(-1, n) / 32768
    return 10 * np.log10(np.mean(frames**2, axis=1) + 1e-12)


def _caller(rate: int) -> Float:
    """The caller clip from 20 ms before its first frame above -35 dBFS (no room noise)."""
    clip = _speech("en_short.wav", rate)
    start = max(0, int(np.argmax(_frame_db(clip, rate) > -35)) - 1) * (rate // 50)
    return clip[start:]


def _echo_of(reference: Float, rate: int, atten_db: float) -> Float:
    rng = np.random.default_rng(3)
    n = int(0.03 * rate)
    response = np.zeros(n)
    response[0] = 1.0
    response[1:] = rng.standard_normal(n - 1) * np.exp(-np.arange(1, n) / (0.008 * rate)) * 0.3
    b, a = signal.butter(2, [200, min(3400, 0.45 * rate)], btype="band", fs=rate)
    echo = signal.lfilter(response, [1.0], signal.lfilter(b, a, reference))
    return echo * 10 ** (atten_db / 20) * np.sqrt(np.mean(reference**2) / np.mean(echo**2))


def _call(
    rate: int, atten_db: float, delay_ms: int, caller: bool = False
) -> tuple[Int16, Int16, Float, Float]:
    """Reference, mic, and the mic's echo and caller parts (same length as the mic)."""
    reference = _speech("pt_br_speech.wav", rate)
    echo = _echo_of(reference, rate, atten_db)
    delay = rate * delay_ms // 1000
    total = reference.size + delay + rate
    echo_track = np.zeros(total)
    echo_track[delay : delay + echo.size] = echo
    caller_track = np.zeros(total)
    if caller:
        voice = _caller(rate)
        at = int(CALLER_AT_S * rate)
        caller_track[at : at + voice.size] = voice
    noise = np.random.default_rng(5).standard_normal(total) * 32768 * 10 ** (NOISE_DBFS / 20)
    mic = np.clip(np.rint(echo_track + caller_track + noise), -32768, 32767).astype(np.int16)
    return np.rint(reference).astype(np.int16), mic, echo_track, caller_track


def _play(guard: EchoGuard, reference: Int16, mic: Int16) -> tuple[Int16, npt.NDArray[np.bool_]]:
    """Feed the mic in 20 ms frames, sending the reference 1 s ahead as a session does."""
    rate = guard.sample_rate
    frame, chunk = rate // 50, rate // 5
    sent = 0
    audio: list[Int16] = []
    flags: list[bool] = []
    for start in range(0, mic.size - frame + 1, frame):
        while sent < reference.size and sent < start + rate:
            guard.reference(reference[sent : sent + chunk], position=guard.position)
            sent += chunk
        result = guard.process(mic[start : start + frame])
        audio.append(result.audio)
        flags.append(result.near_end)
    return np.concatenate(audio), np.array(flags)


def _erle_db(mic: Int16, out: Int16, echo: Float, rate: int) -> float:
    """Mic over output power where the echo is 10 dB above the noise."""
    n = rate // 50
    frames = out.size // n
    active = np.flatnonzero(_frame_db(echo, rate)[:frames] > NOISE_DBFS + 10)
    before = mic[: frames * n].astype(np.float64).reshape(-1, n)[active]
    after = out[: frames * n].astype(np.float64).reshape(-1, n)[active]
    return float(10 * np.log10(np.sum(before**2) / np.sum(after**2)))


@pytest.mark.parametrize("rate", [8000, 16000])
@pytest.mark.parametrize("atten_db", [-6, -10, -20])
@pytest.mark.parametrize("delay_ms", [100, 250])
def test_echo_alone_is_never_taken_for_the_caller(rate: int, atten_db: int, delay_ms: int) -> None:
    reference, mic, echo, _ = _call(rate, atten_db, delay_ms)
    guard = EchoGuard(rate)

    out, flags = _play(guard, reference, mic)

    assert not flags.any(), f"near-end at {np.flatnonzero(flags)[:5] * 20} ms"
    assert _erle_db(mic, out, echo, rate) >= 15.0
    assert guard.delay_ms is not None
    assert abs(guard.delay_ms - delay_ms) <= 3.0  # the path's own group delay is ~1 ms


@pytest.mark.parametrize("rate", [8000, 16000])
@pytest.mark.parametrize("atten_db", [-6, -20])
def test_caller_over_the_echo_is_flagged_within_300_ms(rate: int, atten_db: int) -> None:
    reference, mic, _, caller = _call(rate, atten_db, 250, caller=True)
    guard = EchoGuard(rate)

    out, flags = _play(guard, reference, mic)

    speaking = _frame_db(caller, rate)[: flags.size] > -35
    onset = int(np.argmax(speaking))
    assert not flags[:onset].any()
    first = onset + int(np.argmax(flags[onset:]))
    assert flags[onset:].any() and (first - onset) * 20 <= 300
    # The caller passes while it speaks: flagged in most of its speech, at its own level.
    assert flags[speaking].mean() >= 0.8
    n = rate // 50
    said = out[: flags.size * n].astype(np.float64).reshape(-1, n)[speaking]
    alone = caller[: flags.size * n].reshape(-1, n)[speaking]
    assert 10 * np.log10(np.sum(said**2) / np.sum(alone**2)) >= -1.0


@pytest.mark.parametrize("rate", [8000, 16000])
def test_the_agent_is_removed_and_the_caller_kept(rate: int) -> None:
    """What STT gets: the agent ~30 dB down, the caller as it spoke."""
    reference, mic, echo, caller = _call(rate, -6, 250, caller=True)
    out, _ = _play(EchoGuard(rate), reference, mic)

    n = rate // 50
    frames = out.size // n
    shape = (frames, n)
    mic_frames = mic[: frames * n].astype(np.float64).reshape(shape)
    cleaned = out[: frames * n].astype(np.float64).reshape(shape)
    voice = caller[: frames * n].reshape(shape)
    caller_db = _frame_db(caller, rate)[:frames]
    echo_only = (_frame_db(echo, rate)[:frames] > -45) & (caller_db < -90)
    echo_only[: rate // n] = False  # the first second: delay search and convergence
    assert echo_only.sum() > 100
    drop = 10 * np.log10(
        np.sum(mic_frames[echo_only] ** 2, axis=1) / np.sum(cleaned[echo_only] ** 2, axis=1)
    )
    assert 10 * np.log10(np.sum(mic_frames[echo_only] ** 2) / np.sum(cleaned[echo_only] ** 2)) >= 25
    assert np.percentile(drop, 5) >= 20.0
    speaking = caller_db > -35
    leftover = cleaned[speaking] - voice[speaking]
    assert 10 * np.log10(np.sum(voice[speaking] ** 2) / np.sum(leftover**2)) >= 20.0


@pytest.mark.parametrize("rate", [8000, 16000])
def test_without_a_reference_frames_pass_through_unchanged(rate: int) -> None:
    guard = EchoGuard(rate)
    voice = np.rint(_speech("en_short.wav", rate)).astype(np.int16)
    frame = rate // 50

    for start in range(0, voice.size - frame + 1, frame):
        chunk = voice[start : start + frame]
        result = guard.process(chunk)
        assert result.audio is chunk
        assert not result.active and not result.near_end and result.caller_possible

    assert guard.position == voice.size // frame * frame
    assert guard.delay_ms is None


@pytest.mark.parametrize("rate", [8000, 16000])
def test_a_finished_reply_leaves_the_guard_idle_after_its_echo_tail(rate: int) -> None:
    reference, mic, _, _ = _call(rate, -10, 250)
    guard = EchoGuard(rate)
    _play(guard, reference, mic)  # the mic runs 1 s past the reply's end
    assert not guard.active
    frame = mic[:320].copy()
    result = guard.process(frame)
    assert result.audio is frame and not result.active

    # Playback ended at reference.size; the echo tail is the delay plus the 64 ms filter.
    guard = EchoGuard(rate)
    tail_end = reference.size + rate * (250 + 64 + 20) // 1000
    _play(guard, reference, mic[:tail_end])
    assert not guard.active


def test_stop_playback_drops_what_was_sent_ahead() -> None:
    rate = 16000
    reference, mic, _, _ = _call(rate, -10, 250)
    guard = EchoGuard(rate)
    half = 3 * rate
    _play(guard, reference, mic[:half])  # 4 s of reference sent by now
    assert guard.active

    guard.stop_playback()
    frame = rate // 50
    tail = rate * (250 + 64 + 20) // 1000
    for start in range(half, half + tail, frame):
        guard.process(mic[start : start + frame])

    assert not guard.active


def test_the_next_reply_is_cancelled_from_its_start() -> None:
    """The echo path learned on one reply carries over; a later reply starts where sent."""
    rate = 16000
    reference, mic, echo, _ = _call(rate, -10, 250)
    guard = EchoGuard(rate)
    _play(guard, reference, mic)
    assert not guard.active

    # Two seconds of silence, then the same reply again, sent when the mic is at 2 s.
    gap = np.rint(
        np.random.default_rng(9).standard_normal(2 * rate) * 32768 * 10 ** (NOISE_DBFS / 20)
    ).astype(np.int16)
    _play(guard, np.zeros(0, dtype=np.int16), gap)
    out, flags = _play(guard, reference, mic)

    assert not flags.any()
    first_second = slice(0, rate)
    assert _erle_db(mic[first_second], out[first_second], echo[first_second], rate) >= 15.0


def test_playback_clock_places_chunks_back_to_back() -> None:
    """Sent all at once or just in time, the same reply lands at the same place."""
    rate = 8000
    reference, mic, _, _ = _call(rate, -10, 100)
    ahead = EchoGuard(rate)
    ahead.reference(reference, position=0)
    just_in_time = EchoGuard(rate)
    frame = rate // 50
    outputs: list[tuple[Int16, Int16]] = []
    for start in range(0, mic.size - frame + 1, frame):
        if start < reference.size:
            just_in_time.reference(reference[start : start + frame], position=start)
        chunk = mic[start : start + frame]
        outputs.append((ahead.process(chunk).audio, just_in_time.process(chunk).audio))

    assert all(np.array_equal(a, b) for a, b in outputs)


def test_rejects_what_it_cannot_handle() -> None:
    with pytest.raises(ValueError, match="sample_rate"):
        EchoGuard(2000)
    with pytest.raises(ValueError, match="max_delay_ms"):
        EchoGuard(16000, max_delay_ms=0)
    with pytest.raises(ValueError, match="mono"):
        EchoGuard(16000).process(np.zeros((160, 2), dtype=np.int16))


@pytest.mark.parametrize("rate", [8000, 16000])
def test_with_no_echo_at_all_the_caller_is_still_heard(rate: int) -> None:
    # A phone that cancels its own echo: the mic hears only noise while the agent speaks,
    # so no delay is ever locked; the caller, 10 dB under the agent, must still count.
    reference = _speech("pt_br_speech.wav", rate)
    voice = (
        _caller(rate)
        * 10 ** (-10 / 20)
        * np.sqrt(np.mean(reference**2) / np.mean(_caller(rate) ** 2))
    )
    total = reference.size + rate
    noise = np.random.default_rng(5).standard_normal(total) * 32768 * 10 ** (NOISE_DBFS / 20)
    caller = np.zeros(total)
    at = int(CALLER_AT_S * rate)
    caller[at : at + voice.size] = voice
    mic = np.clip(np.rint(caller + noise), -32768, 32767).astype(np.int16)
    guard = EchoGuard(rate)

    _, flags = _play(guard, np.rint(reference).astype(np.int16), mic)

    assert guard.delay_ms is None
    speaking = _frame_db(caller, rate)[: flags.size] > -35
    onset = int(np.argmax(speaking))
    assert not flags[:onset].any()
    first = onset + int(np.argmax(flags[onset:]))
    assert flags[onset:].any() and (first - onset) * 20 <= 300
    assert flags[speaking].mean() >= 0.8
