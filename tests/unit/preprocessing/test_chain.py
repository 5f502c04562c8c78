"""Preprocessing stages and chain: signal content, and streaming == batch on real recordings."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
import types
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from scipy import signal

import theo.preprocessing
from tests.helpers.audio import read_wav
from theo.errors import AudioFormatError, InvalidRequestError
from theo.manifest import PreprocessingConfig
from theo.preprocessing import (
    AudioStage,
    ChainOutput,
    DCRemove,
    Denoise,
    GainNormalize,
    PreprocessingChain,
    Resample,
    preprocess_batch,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "audio"
RATE = 16_000
TOLERANCE = 1e-5

Audio = npt.NDArray[np.float32]
Framing = Callable[[int], Iterator[int]]


def load(name: str) -> tuple[Audio, int]:
    samples, rate = read_wav(FIXTURES / name)
    return (samples.astype(np.float32) / 32768.0), rate


def tone(freq: float, seconds: float, rate: int, amplitude: float) -> Audio:
    t = np.arange(round(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def dbfs(samples: Audio) -> float:
    return float(20 * np.log10(np.max(np.abs(samples))))


def fixed(rate: int, ms: float) -> Iterator[int]:
    size = max(1, round(rate * ms / 1000))
    while True:
        yield size


def irregular(rate: int) -> Iterator[int]:
    """Random sizes from 0 (empty frames) to ~90 ms, reproducible."""
    rng = np.random.default_rng(rate)
    while True:
        yield int(rng.integers(0, rate * 9 // 100))


FRAMINGS: dict[str, Framing] = {
    "20ms": lambda rate: fixed(rate, 20),
    "7ms": lambda rate: fixed(rate, 7),
    "33ms": lambda rate: fixed(rate, 33),
    "random": irregular,
}


def frames(samples: Audio, sizes: Iterator[int]) -> Iterator[Audio]:
    start = 0
    while start < samples.size:
        size = next(sizes)
        yield samples[start : start + size]
        start += size


def run_stage(stage: AudioStage, pieces: Iterator[Audio]) -> Audio:
    out = [stage.process(piece) for piece in pieces]
    return np.concatenate([*out, stage.flush()])


def run_chain(chain: PreprocessingChain, pieces: Iterator[Audio]) -> ChainOutput:
    outputs = [chain.process(piece) for piece in pieces]
    outputs.append(chain.flush())
    return ChainOutput(
        vad=np.concatenate([o.vad for o in outputs]),
        engine=np.concatenate([o.engine for o in outputs]),
    )


def peak_frequency(samples: Audio, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(samples.size)))
    return float(np.fft.rfftfreq(samples.size, 1 / rate)[np.argmax(spectrum)])


# --------------------------------------------------------------------------- resample


@pytest.mark.parametrize("rate", [8_000, 22_050, 44_100, 48_000])
def test_resample_streams_a_sine_to_16k_keeping_length_frequency_and_level(rate: int) -> None:
    sine = tone(440.0, 1.0, rate, amplitude=0.5)

    out = run_stage(Resample(rate), frames(sine, fixed(rate, 20)))

    assert out.dtype == np.float32
    assert out.size == round(sine.size * RATE / rate)
    middle = out[RATE // 4 : -RATE // 4]
    assert peak_frequency(middle, RATE) == pytest.approx(440.0, abs=2.0)
    assert np.sqrt(np.mean(middle**2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.01)


def test_resample_at_16k_passes_samples_through() -> None:
    speech, _ = load("en_short.wav")
    stage = Resample(RATE)

    assert np.array_equal(stage.process(speech), speech)
    assert stage.flush().size == 0


# --------------------------------------------------------------------------- DC removal


def test_dc_remove_removes_an_offset_and_keeps_the_tone() -> None:
    sine = tone(200.0, 3.0, RATE, amplitude=0.2)

    out = run_stage(DCRemove(RATE, 20.0), frames(sine + np.float32(0.3), fixed(RATE, 20)))

    settled = out[RATE:]
    assert abs(float(np.mean(settled))) < 1e-3
    assert np.max(np.abs(settled)) == pytest.approx(0.2, rel=0.01)
    # The stream opens on the offset; starting the filter in steady state avoids a 0.3 step.
    assert np.max(np.abs(out)) < 0.25  # with a step it would reach 0.5


def test_dc_remove_rejects_a_cutoff_above_nyquist() -> None:
    with pytest.raises(ValueError, match="cut-off"):
        DCRemove(RATE, 9_000.0)


# --------------------------------------------------------------------------- gain


def test_gain_brings_a_minus_30_dbfs_tone_to_the_target() -> None:
    quiet = tone(440.0, 2.0, RATE, amplitude=10 ** (-30 / 20))

    out = run_stage(GainNormalize(RATE, target_peak_dbfs=-3.0), frames(quiet, fixed(RATE, 20)))

    assert out.size == quiet.size
    assert dbfs(out[RATE:]) == pytest.approx(-3.0, abs=0.1)


def test_gain_attenuates_a_loud_tone_to_the_target() -> None:
    loud = tone(440.0, 1.0, RATE, amplitude=0.99)

    out = run_stage(GainNormalize(RATE, target_peak_dbfs=-3.0), frames(loud, fixed(RATE, 20)))

    assert dbfs(out) == pytest.approx(-3.0, abs=0.1)


def test_gain_never_amplifies_near_silence_beyond_max_gain() -> None:
    hiss = tone(440.0, 2.0, RATE, amplitude=10 ** (-80 / 20))

    out = run_stage(GainNormalize(RATE, max_gain_db=30.0), frames(hiss, fixed(RATE, 20)))

    assert dbfs(out) == pytest.approx(-50.0, abs=0.1)


def test_gain_never_overshoots_on_a_sudden_peak_and_recovers_smoothly() -> None:
    quiet = tone(440.0, 1.0, RATE, amplitude=10 ** (-30 / 20))
    burst = tone(440.0, 0.1, RATE, amplitude=0.9)
    audio = np.concatenate([quiet, burst, quiet, quiet])
    stage = GainNormalize(RATE, target_peak_dbfs=-3.0, window_ms=500, max_gain_db=30.0)

    out = run_stage(stage, frames(audio, fixed(RATE, 20)))

    target = 10 ** (-3 / 20)
    assert np.max(np.abs(out)) <= target * (1 + 1e-6)
    burst_end = quiet.size + burst.size
    window = RATE // 2
    # Just after the burst leaves the window the gain has not jumped back to full...
    just_after = out[burst_end + window : burst_end + window + RATE // 100]
    assert np.max(np.abs(just_after)) < 0.5 * target
    # ...and half a second later it has.
    assert dbfs(out[-RATE // 4 :]) == pytest.approx(-3.0, abs=0.1)


def test_gain_output_does_not_depend_on_frame_sizes() -> None:
    speech, rate = load("en_librivox.wav")
    whole = run_stage(GainNormalize(rate), iter([speech]))
    rng = np.random.default_rng(3)
    # Frame sizes on both sides of the 8000-sample window.
    sizes = iter(int(size) for size in rng.choice([0, 1, 160, 320, 7_999, 8_000, 20_000], 10_000))

    framed = run_stage(GainNormalize(rate), frames(speech, sizes))

    np.testing.assert_array_equal(framed, whole)


# --------------------------------------------------------------------------- denoise


@pytest.fixture(scope="module")
def telephone_speech_16k() -> Audio:
    """The 8 kHz fixture brought to 16 kHz, as the chain does before denoising."""
    speech, rate = load("en_librivox_8k.wav")
    return run_stage(Resample(rate), iter([speech]))


def test_denoise_removes_white_noise_and_keeps_the_speech_band(telephone_speech_16k: Audio) -> None:
    clean = telephone_speech_16k
    noise = (np.random.default_rng(7).standard_normal(clean.size) * 10 ** (-30 / 20)).astype(
        np.float32
    )

    out = run_stage(Denoise(RATE), frames(clean + noise, fixed(RATE, 20)))

    assert out.size == clean.size
    envelope = np.convolve(clean.astype(np.float64) ** 2, np.ones(1600) / 1600, mode="same")
    silent = envelope < 1e-7  # the 0.6 s pauses between the recording's sentences
    speech = envelope > np.percentile(envelope, 60)
    assert silent.mean() > 0.05

    def level_db(samples: npt.NDArray[np.floating], where: npt.NDArray[np.bool_]) -> float:
        return float(10 * np.log10(np.mean(np.asarray(samples, dtype=np.float64)[where] ** 2)))

    assert level_db(out, silent) < level_db(noise, silent) - 20.0
    band = signal.butter(4, [300, 3400], btype="bandpass", fs=RATE, output="sos")
    speech_band_loss = level_db(signal.sosfilt(band, clean), speech) - level_db(
        signal.sosfilt(band, out), speech
    )
    assert abs(speech_band_loss) < 2.0
    snr_in = 10 * np.log10(np.sum(clean**2) / np.sum(noise**2))
    snr_out = 10 * np.log10(np.sum(clean**2) / np.sum((out - clean) ** 2))
    assert snr_out > snr_in + 3.0


def test_denoise_output_is_aligned_with_its_input(telephone_speech_16k: Audio) -> None:
    clean = telephone_speech_16k[: 5 * RATE]

    out = run_stage(Denoise(RATE), frames(clean, fixed(RATE, 20)))

    assert out.size == clean.size
    lags = range(-20, 21)
    scores = [np.dot(clean[RATE : 4 * RATE], out[RATE + lag : 4 * RATE + lag]) for lag in lags]
    assert lags[int(np.argmax(scores))] == 0


def test_denoise_handles_streams_shorter_than_its_delay() -> None:
    stage = Denoise(RATE)

    assert stage.process(np.zeros(10, dtype=np.float32)).size == 0
    assert stage.flush().size == 10


# --------------------------------------------------------------------------- streaming == batch


@pytest.fixture(scope="module")
def recordings() -> dict[str, tuple[Audio, int]]:
    speech16, _ = load("en_librivox.wav")
    speech8, rate8 = load("en_librivox_8k.wav")
    # A 44.1 kHz input made with a different resampler than the one under test.
    speech44 = signal.resample_poly(speech16, 441, 160).astype(np.float32)
    return {"16k": (speech16, RATE), "8k": (speech8, rate8), "44.1k": (speech44, 44_100)}


# Every stage in play, RNNoise included for telephone-band input (it is off by default).
AUTO_DENOISE = PreprocessingConfig(denoise="auto")


@pytest.fixture(scope="module")
def batch_outputs(recordings: dict[str, tuple[Audio, int]]) -> dict[str, ChainOutput]:
    config = AUTO_DENOISE
    return {
        name: run_chain(PreprocessingChain.build(config, rate), iter([samples]))
        for name, (samples, rate) in recordings.items()
    }


@pytest.mark.parametrize("framing", list(FRAMINGS))
@pytest.mark.parametrize("recording", ["16k", "8k", "44.1k"])
def test_streaming_chain_equals_batch_chain_on_a_real_recording(
    recording: str,
    framing: str,
    recordings: dict[str, tuple[Audio, int]],
    batch_outputs: dict[str, ChainOutput],
) -> None:
    samples, rate = recordings[recording]
    chain = PreprocessingChain.build(AUTO_DENOISE, rate)
    assert chain.denoise_enabled is (rate == 8_000)

    streamed = run_chain(chain, frames(samples, FRAMINGS[framing](rate)))

    batch = batch_outputs[recording]
    assert batch.engine.size == round(samples.size * RATE / rate)
    for tap in ("vad", "engine"):
        got, want = getattr(streamed, tap), getattr(batch, tap)
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=0, atol=TOLERANCE, err_msg=tap)
    assert np.max(np.abs(batch.engine)) > 0.5  # real signal, not silence compared with silence


def test_preprocess_batch_is_the_engine_tap_of_a_whole_clip(
    recordings: dict[str, tuple[Audio, int]], batch_outputs: dict[str, ChainOutput]
) -> None:
    samples, rate = recordings["8k"]

    out = preprocess_batch(samples, rate, AUTO_DENOISE)

    np.testing.assert_array_equal(out, batch_outputs["8k"].engine)


def _pt_br_at_8k() -> Audio:
    speech, _ = load("pt_br_speech.wav")
    return signal.resample_poly(speech, 1, 2).astype(np.float32)


def test_interleaved_sessions_match_sequential_ones(
    recordings: dict[str, tuple[Audio, int]],
) -> None:
    english, rate = recordings["8k"]
    portuguese = _pt_br_at_8k()
    config = PreprocessingConfig(denoise="on")
    step = rate // 50

    sequential = [
        run_chain(PreprocessingChain.build(config, rate), frames(clip, fixed(rate, 20)))
        for clip in (english, portuguese)
    ]

    chains = [PreprocessingChain.build(config, rate), PreprocessingChain.build(config, rate)]
    collected: list[list[ChainOutput]] = [[], []]
    clips = (english, portuguese)
    for start in range(0, max(english.size, portuguese.size), step):
        for index in (0, 1):
            if start < clips[index].size:
                frame = clips[index][start : start + step]
                collected[index].append(chains[index].process(frame))
    for index in (0, 1):
        collected[index].append(chains[index].flush())

    for index in (0, 1):
        for tap in ("vad", "engine"):
            got = np.concatenate([getattr(o, tap) for o in collected[index]])
            # Same framing as the sequential run, so any difference can only be shared state.
            np.testing.assert_array_equal(got, getattr(sequential[index], tap), err_msg=tap)


def _is_immutable(value: object) -> bool:
    immutable = (int, float, complex, str, bytes, bool, type(None), tuple, frozenset)
    definitions = (types.ModuleType, types.FunctionType, types.BuiltinFunctionType, type)
    aliases = (types.GenericAlias, types.UnionType)
    return isinstance(value, immutable + definitions + aliases) or callable(value)


def test_no_module_level_mutable_state() -> None:
    package = theo.preprocessing
    names = [info.name for info in pkgutil.iter_modules(package.__path__, package.__name__ + ".")]
    assert len(names) >= 6
    for module in [package, *map(importlib.import_module, names)]:
        for attribute, value in vars(module).items():
            if attribute.startswith("__") or attribute == "annotations":
                continue  # dunders, and the `from __future__ import annotations` flag
            assert _is_immutable(value), f"{module.__name__}.{attribute} is mutable state"


def test_importing_preprocessing_does_not_load_rnnoise() -> None:
    code = "import sys, theo.preprocessing; assert 'pyrnnoise' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


# --------------------------------------------------------------------------- taps and config


def test_vad_tap_is_never_gain_normalized() -> None:
    speech, rate = load("en_librivox.wav")
    quiet = speech * np.float32(10 ** (-30 / 20) / np.max(np.abs(speech)))

    out = run_chain(PreprocessingChain.build(PreprocessingConfig(), rate), iter([quiet]))

    assert dbfs(out.vad) == pytest.approx(-30.0, abs=1.0)
    assert dbfs(out.engine) == pytest.approx(-3.0, abs=0.1)


def test_disabled_stages_pass_16k_audio_through() -> None:
    speech, rate = load("en_short.wav")
    config = PreprocessingConfig(dc_remove=False, gain_normalize=False, denoise="off")

    out = run_chain(PreprocessingChain.build(config, rate), frames(speech, fixed(rate, 20)))

    np.testing.assert_array_equal(out.vad, speech)
    np.testing.assert_array_equal(out.engine, speech)


@pytest.mark.parametrize(
    ("denoise", "rate", "enabled"),
    [
        ("auto", 8_000, True),
        ("auto", 16_000, False),
        ("auto", 44_100, False),
        ("on", 16_000, True),
        ("off", 8_000, False),
    ],
)
def test_denoise_setting(denoise: str, rate: int, enabled: bool) -> None:
    config = PreprocessingConfig.model_validate({"denoise": denoise})

    assert PreprocessingChain.build(config, rate).denoise_enabled is enabled


def test_chain_rejects_bad_input() -> None:
    with pytest.raises(InvalidRequestError, match="sample rate"):
        PreprocessingChain.build(PreprocessingConfig(), 0)
    chain = PreprocessingChain.build(PreprocessingConfig(), RATE)
    with pytest.raises(AudioFormatError, match="mono"):
        chain.process(np.zeros((2, 160), dtype=np.float32))
    with pytest.raises(AudioFormatError, match="NaN"):
        chain.process(np.array([0.0, np.nan], dtype=np.float32))
    chain.flush()
    with pytest.raises(RuntimeError, match="flushed"):
        chain.process(np.zeros(160, dtype=np.float32))
    with pytest.raises(RuntimeError, match="flushed"):
        chain.flush()


def test_empty_stream_yields_empty_taps() -> None:
    chain = PreprocessingChain.build(PreprocessingConfig(denoise="on"), 8_000)

    out = run_chain(chain, iter([np.zeros(0, dtype=np.float32)]))

    assert out.vad.size == 0
    assert out.engine.size == 0
