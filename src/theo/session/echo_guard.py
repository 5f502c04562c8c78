"""Echo guard: the session's own reply, heard back through the caller's microphone, removed.

While the session speaks, the client plays the reply and its microphone picks it up again:
the echo is the reply delayed (100-500 ms on the mic timeline: network, jitter buffer,
loudspeaker, capture), attenuated and filtered. Silero would take it for the caller, and
STT would transcribe the agent's own words. The session knows exactly what it sent, so one
:class:`EchoGuard` per session removes it, in three steps per mic frame:

1. **Delay.** Mic and reference are cross-correlated at every lag up to ``max_delay_ms``
   (GCC-PHAT on a smoothed cross-spectrum, at 4 kHz, every 100 ms); a peak that stands
   out twice in a row at the same lag locks the delay, refined to the sample at full rate.
2. **Cancellation.** A 64 ms adaptive filter (frequency-domain block NLMS, overlap-save,
   per-bin normalised) placed at that delay, seeded with the lag's least-squares gain,
   models the echo path; its estimate is subtracted from the mic. A background copy
   adapts on every block and the foreground copies it only when it cancels clearly
   better, so double talk cannot corrupt the estimate and no double-talk verdict is
   needed to keep learning.
3. **Double talk.** The residual is compared with the residual echo expected (the echo
   estimate's envelope times how much of it the filter leaves, tracked as an upper
   quantile) plus the noise floor. Well above it for 100 ms, the caller is speaking:
   ``near_end`` is raised and the residual passes untouched. Otherwise the residual is
   attenuated further (residual echo suppression), so neither VAD nor STT hears the agent.

Before the delay is locked (the first ~0.3 s of the first reply) the echo cannot be
cancelled: a frame counts as the caller only if it is louder than the reference itself
could make it, and is attenuated otherwise.

The guard is synchronous numpy, ~0.1 ms per 20 ms frame while a reply plays and a
pass-through once its echo tail is over. All state belongs to the instance: one guard per
session, one thread at a time. The learned echo path outlives a reply, so the next reply
on the same call starts cancelled.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

Int16Array = npt.NDArray[np.int16]
_Float = npt.NDArray[np.float64]
_Complex = npt.NDArray[np.complex128]

_FULL_SCALE: Final = 32768.0
_TINY: Final = 1e-12

# Delay search.
_DECIMATED_RATE: Final = 4000
"""Rate the delay is searched at: speech correlates well below 2 kHz, and it is cheaper."""
_ESTIMATE_HOP_MS: Final = 100
_ESTIMATE_WINDOW_MS: Final = 200
_SPECTRUM_SMOOTHING: Final = 0.7
"""Weight of the previous cross-spectrum in each delay estimate (memory ~0.3 s)."""
_PHAT_BETA: Final = 0.8
"""Partial PHAT weighting: 1 whitens fully (sharp peaks, noisy in empty bands), 0 not at all."""
_LOCK_CONFIDENCE: Final = 12.0
"""Correlation peak over the mean absolute correlation needed to trust a delay."""
_LOCK_SNR: Final = 10.0
"""Mic power over the noise floor needed in the window a delay is locked on."""

# Cancellation.
_FILTER_MS: Final = 64
_PRE_MS: Final = 16
"""Filter taps before the locked delay: in a reverberant path the correlation may peak
on a reflection a few milliseconds after the direct sound, which must still be covered."""
_STEP: Final = 0.5
_POWER_SMOOTHING: Final = 0.9
_REGULARISER: Final = 1e-6
"""Power per bin (-60 dBFS) below which the filter barely adapts: a near-silent reference
says little about the echo path, and whitening it would turn mic noise into taps."""
_COMPARE_SMOOTHING: Final = 0.5
_COPY_RATIO: Final = 0.7
"""Background error power, relative to the foreground's, below which it is copied..."""
_COPY_RATIO_TALKING: Final = 0.25
_RESTORE_RATIO: Final = 4.0
"""...and above which the background (thrown off by double talk) restarts from it."""

# Double talk and suppression.
_ON_DB: Final = 6.0
"""Residual over the expected residual echo at which a frame counts as the caller."""
_OFF_DB: Final = 3.0
_ON_MS: Final = 100
_HANGOVER_MS: Final = 200
_SPEECH_MIN_DB: Final = -60.0
"""Quietest residual (dBFS) that may count as the caller."""
_LEAK_UP_DB_PER_S: Final = 60.0
_LEAK_UP_SPEECH_DB_PER_S: Final = 2.0
_LEAK_DOWN_DB_PER_S: Final = 20.0
_LEAK_MIN_DB: Final = -18.0
"""Least echo the filter is assumed to leave: it cancels better on average, but nonlinear
echo and unlearned frequencies leave transients this loud."""
_LEAK_MAX_DB: Final = 6.0
_LOCKED_LEAK_MARGIN_DB: Final = 3.0
_ENVELOPE_DECAY_DB_PER_S: Final = 60.0
_NOISE_START_DB: Final = -60.0
_NOISE_MIN_DB: Final = -90.0
_NOISE_RISE_DB_PER_S: Final = 6.0
_SUPPRESSION_DB: Final = -30.0
"""Gain on frames judged echo only, after cancellation."""

# Echo return loss before the delay is locked.
_ERL_MARGIN_DB: Final = 6.0
"""Above the loudest mic/reference ratio seen: the most echo there can be, unlocked."""
_ERL_DOWN_DB_PER_S: Final = 20.0
_ERL_UP_DB_PER_S: Final = 3.0
_ERL_MIN_DB: Final = -40.0


def _db(power: float) -> float:
    return 10.0 * math.log10(max(power, _TINY))


def _from_db(db: float) -> float:
    return float(10.0 ** (db / 10.0))


def _power(samples: _Float) -> float:
    return float(np.dot(samples, samples)) / samples.size if samples.size else 0.0


def _next_pow2(n: int) -> int:
    return 1 << max(0, n - 1).bit_length()


@dataclass(frozen=True, slots=True)
class GuardResult:
    """What the guard made of one mic frame.

    Attributes:
        audio: The frame with the echo removed (int16, same length); the very input array
            when the guard is idle.
        active: Whether the reference (or its echo tail) overlaps this frame. When False
            the guard did nothing and the VAD alone decides.
        near_end: Whether something beyond the echo is heard (the caller): raised after
            100 ms above the expected residual echo, held 200 ms. False when not active.
            It says "not echo", not "speech": the VAD decides that.
        score_db: Residual over the residual echo expected, in dB; 0.0 when not active.
        delay_ms: The learned echo delay on the mic timeline, or None before it is found.
    """

    audio: Int16Array
    active: bool
    near_end: bool
    score_db: float
    delay_ms: float | None

    @property
    def caller_possible(self) -> bool:
        """Whether speech the VAD finds in this frame may be the caller rather than echo."""
        return self.near_end or not self.active


class _Timeline:
    """Samples at absolute positions of the mic timeline; zero wherever none were written."""

    def __init__(self) -> None:
        self._buffer = np.zeros(0, dtype=np.float64)
        self._head = 0  # index in _buffer of position _base
        self._base = 0
        self._size = 0

    @property
    def end(self) -> int:
        """One past the last position written."""
        return self._base + self._size

    def write(self, start: int, samples: _Float) -> None:
        """Write ``samples`` from ``start``, at or after :attr:`end` (a gap reads as zeros)."""
        if self._size == 0:
            self._base, self._head = start, 0
        gap = max(0, start - self.end)
        needed = gap + samples.size
        if self._head + self._size + needed > self._buffer.size:
            grown = np.zeros(max(2 * (self._size + needed), 4096), dtype=np.float64)
            grown[: self._size] = self._buffer[self._head : self._head + self._size]
            self._buffer, self._head = grown, 0
        at = self._head + self._size
        self._buffer[at : at + gap] = 0.0
        self._buffer[at + gap : at + needed] = samples
        self._size += needed

    def read(self, start: int, stop: int) -> _Float:
        """Positions ``[start, stop)`` as a new array."""
        out = np.zeros(stop - start, dtype=np.float64)
        lo, hi = max(start, self._base), min(stop, self.end)
        if lo < hi:
            offset = self._head - self._base
            out[lo - start : hi - start] = self._buffer[lo + offset : hi + offset]
        return out

    def forget_before(self, position: int) -> None:
        """Drop what lies before ``position`` (the space is reused on the next growth)."""
        drop = min(max(0, position - self._base), self._size)
        self._head += drop
        self._base += drop
        self._size -= drop

    def truncate(self, stop: int) -> None:
        """Drop what lies at or after ``stop``."""
        self._size = min(self._size, max(0, stop - self._base))


class _DelayEstimator:
    """Echo delay by GCC-PHAT between decimated mic and reference, smoothed over windows."""

    def __init__(self, sample_rate: int, max_delay: int) -> None:
        self.factor = max(1, sample_rate // _DECIMATED_RATE)
        f = self.factor
        self.hop = sample_rate * _ESTIMATE_HOP_MS // 1000 // f * f
        self.window = sample_rate * _ESTIMATE_WINDOW_MS // 1000 // f * f
        self.lags = -(-max_delay // f)
        self._nfft = _next_pow2(self.window // f + self.lags + 1)
        self._spectrum: _Complex = np.zeros(self._nfft // 2 + 1, dtype=np.complex128)
        self._candidate: int | None = None

    def update(self, mic: _Float, reference: _Float) -> int | None:
        """Fold one window in; return a delay (full-rate samples) found twice in a row.

        Args:
            mic: The last ``window`` mic samples.
            reference: The reference from ``lags * factor`` samples before that window
                to its end.
        """
        f = self.factor
        mic_d = mic.reshape(-1, f).mean(axis=1)
        ref_d = reference.reshape(-1, f).mean(axis=1)
        cross = np.conj(np.fft.rfft(mic_d, self._nfft)) * np.fft.rfft(ref_d, self._nfft)
        self._spectrum *= _SPECTRUM_SMOOTHING
        self._spectrum += (1.0 - _SPECTRUM_SMOOTHING) * cross
        weighted = self._spectrum / (np.abs(self._spectrum) ** _PHAT_BETA + _TINY)
        # Index m of the correlation is delay (lags - m): the reference starts `lags` early.
        correlation = np.fft.irfft(weighted, self._nfft)[: self.lags + 1]
        peak = int(np.argmax(correlation))
        if correlation[peak] < _LOCK_CONFIDENCE * float(np.mean(np.abs(correlation))):
            self._candidate = None
            return None
        delay = (self.lags - peak) * f
        previous, self._candidate = self._candidate, delay
        return delay if previous is not None and abs(previous - delay) <= f else None


class _EchoFilter:
    """Foreground/background block frequency-domain NLMS (overlap-save), block = taps."""

    def __init__(self, taps: int) -> None:
        self.taps = taps
        self._nfft = 2 * taps
        self.weights: _Float = np.zeros(taps, dtype=np.float64)
        self._front: _Complex = np.zeros(taps + 1, dtype=np.complex128)
        self._back: _Complex = np.zeros(taps + 1, dtype=np.complex128)
        self._power: _Float = np.zeros(taps + 1, dtype=np.float64)
        self._front_error = 0.0
        self._back_error = 0.0
        self._cache: dict[int, _Complex] = {}

    def seed(self, weights: _Float) -> None:
        """Start both filters from ``weights`` (``taps`` long)."""
        self.weights = weights.copy()
        self._front = np.fft.rfft(self.weights, self._nfft)
        self._back = self._front.copy()
        self._front_error = self._back_error = 0.0
        self._cache.clear()

    def estimate(self, reference: _Float, count: int) -> _Float:
        """The echo of the last ``count`` samples of ``reference`` (``taps - 1 + count`` long)."""
        nfft = _next_pow2(reference.size)
        spectrum = self._cache.get(nfft)
        if spectrum is None:
            spectrum = self._cache[nfft] = np.fft.rfft(self.weights, nfft)
        out = np.fft.irfft(np.fft.rfft(reference, nfft) * spectrum, nfft)
        return out[reference.size - count : reference.size]

    def adapt(self, reference: _Float, mic: _Float, talking: bool) -> None:
        """One block: ``reference`` is ``2 * taps`` long and ``mic`` the echo of its end.

        ``talking`` (the caller is heard) makes the foreground harder to replace: adapting
        on the caller's voice can lower the background's error a little, never much.
        """
        n = self.taps
        x = np.fft.rfft(reference, self._nfft)
        error = mic - np.fft.irfft(x * self._back, self._nfft)[n:]
        front_error = mic - np.fft.irfft(x * self._front, self._nfft)[n:]
        self._compare(_power(error), _power(front_error), talking)
        power = (x.real**2 + x.imag**2) / self._nfft
        self._power *= _POWER_SMOOTHING
        self._power += (1.0 - _POWER_SMOOTHING) * power
        # Never below this block's power: an onset after a quiet stretch would otherwise
        # take a step many times too long and throw the filter off.
        np.maximum(self._power, power, out=self._power)
        regulariser = 1e-2 * float(self._power.mean()) + _REGULARISER
        e = np.fft.rfft(np.concatenate((np.zeros(n), error)), self._nfft)
        gradient = np.fft.irfft(np.conj(x) * e / (self._power + regulariser), self._nfft)[:n]
        back = np.fft.irfft(self._back, self._nfft)[:n] + (_STEP / n) * gradient
        self._back = np.fft.rfft(back, self._nfft)

    def _compare(self, back_error: float, front_error: float, talking: bool) -> None:
        a = _COMPARE_SMOOTHING
        self._back_error = a * self._back_error + (1 - a) * back_error
        self._front_error = a * self._front_error + (1 - a) * front_error
        ratio = _COPY_RATIO_TALKING if talking else _COPY_RATIO
        if self._back_error < ratio * self._front_error:
            self._front = self._back.copy()
            self.weights = np.fft.irfft(self._front, self._nfft)[: self.taps]
            self._front_error = self._back_error
            self._cache.clear()
        elif self._back_error > _RESTORE_RATIO * self._front_error:
            self._back = self._front.copy()
            self._back_error = self._front_error


class _TalkDetector:
    """Near-end verdict from residual and echo powers; the suppression gain that follows."""

    def __init__(self, sample_rate: int) -> None:
        self._rate = sample_rate
        self.leak_db = 0.0
        self.noise = _from_db(_NOISE_START_DB)
        self.envelope = 0.0
        self.near_end = False
        self._above_ms = 0.0
        self._below_ms = 0.0

    def calm(self) -> None:
        """Forget a verdict in progress and the echo envelope (the guard went idle)."""
        self.near_end = False
        self.envelope = 0.0
        self._above_ms = self._below_ms = 0.0

    def judge(self, residual: float, echo: float | None, bound: float, count: int) -> float:
        """Score one frame and update the verdict; return the score in dB.

        Args:
            residual: Mean power of the residual.
            echo: Mean power of the echo estimate, or None before the delay is locked.
            bound: Before the lock, the loudest echo the reference could make.
            count: Samples in the frame.
        """
        seconds = count / self._rate
        if echo is None:
            expected = bound + self.noise
        else:
            decay = _from_db(-_ENVELOPE_DECAY_DB_PER_S * seconds)
            self.envelope = max(echo, self.envelope * decay)
            expected = _from_db(self.leak_db) * self.envelope + self.noise
        score = _db(residual) - _db(expected)
        ms = 1000.0 * seconds
        if score >= _ON_DB and _db(residual) >= _SPEECH_MIN_DB:
            self._above_ms, self._below_ms = self._above_ms + ms, 0.0
        elif score < _OFF_DB:
            self._above_ms, self._below_ms = 0.0, self._below_ms + ms
        if not self.near_end and self._above_ms >= _ON_MS:
            self.near_end = True
        elif self.near_end and self._below_ms >= _HANGOVER_MS:
            self.near_end = False
        if echo is not None:
            self._track_leak(residual, seconds, score)
        if not self.near_end:  # the caller's voice is not the noise floor
            self._track_noise(residual, seconds)
        return score

    def gain(self, score: float) -> float:
        """Linear gain for the residual: 1 with the caller, down to -30 dB on echo alone."""
        if self.near_end or score >= _ON_DB:
            return 1.0
        return 10 ** (_SUPPRESSION_DB * (1.0 - max(score, 0.0) / _ON_DB) / 20)

    def _track_leak(self, residual: float, seconds: float, score: float) -> None:
        """Follow how much echo the filter leaves: an upper quantile of residual/echo.

        Frames judged near-end still pull it up, slowly, so that an underestimate (echo
        the filter cannot model) cannot hold a false verdict for long.
        """
        if self.envelope < 10 * self.noise:
            return
        ratio = _db(residual - self.noise) - _db(self.envelope)
        if ratio > self.leak_db:
            speech = self.near_end or score >= _ON_DB
            rate = _LEAK_UP_SPEECH_DB_PER_S if speech else _LEAK_UP_DB_PER_S
            self.leak_db += min(ratio - self.leak_db, rate * seconds)
        else:
            self.leak_db -= min(self.leak_db - ratio, _LEAK_DOWN_DB_PER_S * seconds)
        self.leak_db = min(max(self.leak_db, _LEAK_MIN_DB), _LEAK_MAX_DB)

    def _track_noise(self, residual: float, seconds: float) -> None:
        if residual < self.noise:
            self.noise = max(residual, _from_db(_NOISE_MIN_DB))
        else:
            self.noise *= _from_db(_NOISE_RISE_DB_PER_S * seconds)


class EchoGuard:
    """Removes the session's own reply from the caller's microphone and spots double talk.

    Positions are counted in samples of the mic stream at the input rate. The session
    passes every reply chunk as it sends it (:meth:`reference`, with the mic position at
    that moment) and every mic frame as it arrives (:meth:`process`). Chunks are placed on
    a playback clock: back to back, each right after the previous one or at its send
    position if the previous one has finished playing, since the client plays them in
    order however far ahead they are sent.
    """

    _first_reference: int | None

    def __init__(self, sample_rate: int, max_delay_ms: int = 500) -> None:
        """A guard with nothing learned yet, at mic position 0.

        Args:
            sample_rate: Rate of both mic and reference (8000 and 16000 are tested).
            max_delay_ms: Largest echo delay searched, from a chunk's place on the
                playback clock to its echo in the mic stream.

        Raises:
            ValueError: ``sample_rate`` below 4000 or ``max_delay_ms`` not positive.
        """
        if sample_rate < _DECIMATED_RATE:
            raise ValueError(f"sample_rate must be at least {_DECIMATED_RATE}, got {sample_rate}")
        if max_delay_ms <= 0:
            raise ValueError(f"max_delay_ms must be positive, got {max_delay_ms}")
        self.sample_rate = sample_rate
        self._max_delay = sample_rate * max_delay_ms // 1000
        self._taps = _next_pow2(sample_rate * _FILTER_MS // 1000)
        self._pre = sample_rate * _PRE_MS // 1000
        # Mic and reference kept: the delay search's window and lags, the filter's blocks.
        self._history = sample_rate * _ESTIMATE_WINDOW_MS // 1000 + self._max_delay + 2 * self._taps
        self._position = 0
        self.reset()

    @property
    def position(self) -> int:
        """Mic samples processed so far."""
        return self._position

    @property
    def delay_ms(self) -> float | None:
        """The learned echo delay (the filter's largest tap), or None while unknown."""
        return None if self._offset is None else self._peak() * 1000 / self.sample_rate

    @property
    def active(self) -> bool:
        """Whether the next mic frame may still hold echo of the reference."""
        return self._position < self._active_until()

    def reference(self, samples: Int16Array, position: int | None = None) -> None:
        """Put reply audio, as it is sent to the client, on the playback clock.

        Args:
            samples: Mono int16 PCM at the guard's rate.
            position: The mic position when the chunk was sent; :attr:`position` if None.
        """
        data = np.asarray(samples, dtype=np.float64) / _FULL_SCALE
        if data.size == 0:
            return
        sent_at = self._position if position is None else position
        self._reference.forget_before(min(sent_at, self._position) - self._history)
        placed = max(sent_at, self._reference.end)
        self._reference.write(placed, data)
        self._referenced = True
        if self._first_reference is None:
            self._first_reference = placed

    def stop_playback(self) -> None:
        """The client stops playing now (reply cancelled): drop the reference not played.

        Echo of what already played is still cancelled through its tail, and the learned
        echo path is kept for the next reply.
        """
        self._reference.truncate(self._position)

    def reset(self) -> None:
        """Forget the reference, the learned delay and echo path; the position carries on."""
        self._reference = _Timeline()
        self._mic = _Timeline()
        self._referenced = False
        self._estimator = _DelayEstimator(self.sample_rate, self._max_delay)
        self._filter = _EchoFilter(self._taps)
        self._detector = _TalkDetector(self.sample_rate)
        self._offset: int | None = None  # first lag the filter covers, once locked
        self._next_estimate = -1
        self._next_block = -1
        self._gain = 1.0
        self._erl_db = 0.0  # unlocked: assume the echo may be as loud as the reference
        self._first_reference = None

    def process(self, frame: Int16Array) -> GuardResult:
        """Clean one mic frame (int16, any length) and judge whether the caller is in it.

        Raises:
            ValueError: ``frame`` is not one-dimensional.
        """
        if frame.ndim != 1:
            raise ValueError(f"expected a mono frame, got shape {frame.shape}")
        start = self._position
        self._position += frame.size
        if start >= self._active_until():
            self._go_idle()
            return GuardResult(frame, False, False, 0.0, self.delay_ms)
        mic = frame.astype(np.float64) / _FULL_SCALE
        self._mic.forget_before(start - self._history)
        self._mic.write(start, mic)
        self._reference.forget_before(start - self._history)
        self._estimate_delay()
        if self._offset is None:
            residual, echo, bound = mic, None, self._unlocked_bound(start, mic)
        else:
            reference = self._reference.read(
                start - self._offset - self._taps + 1, self._position - self._offset
            )
            estimate = self._filter.estimate(reference, frame.size)
            residual, echo, bound = mic - estimate, _power(estimate), 0.0
        score = self._detector.judge(_power(residual), echo, bound, frame.size)
        self._adapt_blocks()
        target = self._detector.gain(score)
        gains = np.linspace(self._gain, target, frame.size, endpoint=False)
        self._gain = target
        out = np.clip(np.rint(residual * gains * _FULL_SCALE), -_FULL_SCALE, _FULL_SCALE - 1)
        return GuardResult(
            out.astype(np.int16), True, self._detector.near_end, score, self.delay_ms
        )

    def _active_until(self) -> int:
        if not self._referenced:
            return 0
        reach = self._max_delay if self._offset is None else self._offset
        return self._reference.end + reach + self._taps

    def _go_idle(self) -> None:
        self._detector.calm()
        self._gain = 1.0
        self._next_estimate = self._next_block = -1

    def _unlocked_bound(self, start: int, mic: _Float) -> float:
        """The most echo there can be before the delay is locked: the loudest 20 ms of
        reference at any lag searched, times the echo return loss observed so far.

        The return loss starts at 0 dB and follows the loudest mic/reference ratio seen
        (plus a margin) once the reference has played longer than the longest delay, so
        that with no echo at all (a phone that cancels its own) the caller can still be
        told apart from the agent: quickly down, slowly up, frozen while the caller talks.
        """
        span = self._reference.read(start - self._max_delay, self._position)
        step = max(1, self.sample_rate // 50)
        frames = span[: span.size - span.size % step].reshape(-1, step)
        loudest = float((frames**2).mean(axis=1).max()) if frames.size else 0.0
        first = self._first_reference
        settled = first is not None and start >= first + self._max_delay
        if settled and loudest > _REGULARISER and not self._detector.near_end:
            seconds = mic.size / self.sample_rate
            target = _db(_power(mic)) - _db(loudest) + _ERL_MARGIN_DB
            if target < self._erl_db:
                self._erl_db = max(target, self._erl_db - _ERL_DOWN_DB_PER_S * seconds)
            else:
                self._erl_db = min(target, self._erl_db + _ERL_UP_DB_PER_S * seconds)
            self._erl_db = min(max(self._erl_db, _ERL_MIN_DB), 0.0)
        return _from_db(self._erl_db) * loudest

    def _estimate_delay(self) -> None:
        est = self._estimator
        if self._next_estimate < 0:
            self._next_estimate = (self._position // est.hop + 1) * est.hop
        while self._next_estimate <= self._position:
            end = self._next_estimate
            self._next_estimate += est.hop
            if self._detector.near_end:
                continue
            reference = self._reference.read(end - est.window - est.lags * est.factor, end)
            if _power(reference) <= _REGULARISER:
                continue
            delay = est.update(self._mic.read(end - est.window, end), reference)
            if delay is not None:
                self._lock(delay, end)

    def _lock(self, coarse: int, end: int) -> None:
        """Refine a delay at the full rate and place (or move) the filter on it."""
        f = self._estimator.factor
        if self._offset is not None and (
            self._offset + self._pre // 2 <= coarse <= self._offset + self._taps * 3 // 4
        ):
            return  # covered: the estimate also hops between reflections of one path
        window = self._estimator.window
        mic = self._mic.read(end - window, end)
        if _power(mic) < _LOCK_SNR * self._detector.noise:
            return  # too little echo above the noise for a trustworthy gain
        best, best_fit, best_gain = coarse, -1.0, 0.0
        for lag in range(max(0, coarse - 2 * f), min(self._max_delay, coarse + 2 * f) + 1):
            ref = self._reference.read(end - window - lag, end - lag)
            energy = float(np.dot(ref, ref)) + _TINY
            dot = float(np.dot(mic, ref))
            if dot * dot / energy > best_fit:
                best, best_fit, best_gain = lag, dot * dot / energy, dot / energy
        offset = max(0, best - self._pre)
        weights = np.zeros(self._taps, dtype=np.float64)
        shift = (self._offset if self._offset is not None else offset - self._taps) - offset
        if abs(shift) < self._taps // 2:  # the delay moved: keep the learned response
            old = self._filter.weights
            if shift >= 0:
                weights[shift:] = old[: self._taps - shift]
            else:
                weights[:shift] = old[-shift:]
        else:
            weights[best - offset] = best_gain
            # One tap models a filtered path only roughly: expect what it leaves in this
            # window, and a margin, until the filter has learned the rest.
            echo = best_gain * self._reference.read(end - window - best, end - best)
            leak = _db(_power(mic - echo)) - _db(_power(echo)) + _LOCKED_LEAK_MARGIN_DB
            self._detector.leak_db = min(max(leak, _LEAK_MIN_DB), _LEAK_MAX_DB)
        self._filter.seed(weights)
        self._offset = offset
        self._next_block = -1

    def _peak(self) -> int:
        """Lag of the filter's largest tap: the delay it has learned."""
        assert self._offset is not None
        return self._offset + int(np.argmax(np.abs(self._filter.weights)))

    def _adapt_blocks(self) -> None:
        if self._offset is None:
            return
        n = self._taps
        if self._next_block < 0:
            self._next_block = (self._position // n + 1) * n
        while self._next_block <= self._position:
            end = self._next_block
            self._next_block += n
            reference = self._reference.read(end - 2 * n - self._offset, end - self._offset)
            if _power(reference) > _REGULARISER:
                talking = self._detector.near_end
                self._filter.adapt(reference, self._mic.read(end - n, end), talking)
