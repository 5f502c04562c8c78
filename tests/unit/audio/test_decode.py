from __future__ import annotations

import io
import struct
import subprocess
import sys
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import pytest

from tests.helpers.audio import read_wav, wav_bytes
from tests.helpers.server import FIXTURES
from theo.audio.buffer import GrowingBuffer
from theo.audio.decode import (
    MAX_CORRUPT_FRACTION,
    MIN_BYTES_PER_SECOND,
    DecodedAudio,
    DecodeLimits,
    StreamingDecoder,
    check_has_signal,
    decode_audio,
)
from theo.audio.pcm import float_to_pcm16 as to_pcm16
from theo.audio.pcm import pcm16_to_float
from theo.config import Settings
from theo.errors import AudioFormatError, AudioTooLongError
from theo.manifest import PreprocessingConfig
from theo.preprocessing.chain import preprocess_batch
from theo.server.batch import prepare_audio

MB = 1024 * 1024


@pytest.mark.parametrize(
    ("name", "rate"),
    [
        ("en_librivox.wav", 16_000),
        ("en_librivox_44k_stereo.mp3", 44_100),
        ("en_librivox_44k_stereo.ogg", 48_000),
        ("en_librivox.flac", 16_000),
        ("en_librivox.m4a", 44_100),
        ("en_librivox.webm", 48_000),
        ("en_librivox_8k.wav", 8_000),
    ],
)
def test_every_container_decodes_to_mono_at_its_rate(name: str, rate: int) -> None:
    audio = decode_audio((FIXTURES / name).read_bytes())
    assert audio.samples.dtype == np.float32 and audio.samples.ndim == 1
    assert audio.sample_rate == rate
    assert audio.duration_s == pytest.approx(27.13, abs=0.1)
    assert 0.3 < float(np.max(np.abs(audio.samples))) <= 1.0
    check_has_signal(audio)


def test_flac_is_lossless() -> None:
    wav = decode_audio((FIXTURES / "en_librivox.wav").read_bytes())
    flac = decode_audio((FIXTURES / "en_librivox.flac").read_bytes())
    np.testing.assert_array_equal(wav.samples, flac.samples)


@pytest.mark.parametrize("data", [b"", b"not audio at all" * 100, b"RIFF\x00\x00"])
def test_undecodable_data(data: bytes) -> None:
    with pytest.raises(AudioFormatError):
        decode_audio(data)


def test_silence_and_empty_are_rejected() -> None:
    with pytest.raises(AudioFormatError, match="silence"):
        check_has_signal(DecodedAudio(np.zeros(16_000, dtype=np.float32), 16_000))
    with pytest.raises(AudioFormatError, match="empty"):
        check_has_signal(DecodedAudio(np.full(10, 0.5, dtype=np.float32), 16_000))
    with pytest.raises(AudioFormatError):
        decode_audio(wav_bytes(np.zeros(0)))


def test_pcm16_conversion_clips_and_rounds() -> None:
    floats = np.array([0.0, 0.5, -1.0, 1.0, 2.0, -2.0, 1.4e-5, -1.6e-5], dtype=np.float32)
    pcm = np.frombuffer(to_pcm16(floats), "<i2")
    assert pcm.tolist() == [0, 16384, -32768, 32767, 32767, -32768, 0, -1]


def test_pcm16_read_and_written_back_is_unchanged_to_the_bit() -> None:
    every_value = np.arange(-32768, 32768, dtype="<i2").tobytes()
    assert to_pcm16(pcm16_to_float(every_value)) == every_value


# --------------------------------------------------------------------------- bounded decoding
# Builders shared with tests/integration/test_bounded_decoding_e2e.py.

ENGINE_RATE = 16_000


def _encode_flac(blocks: Iterator[np.ndarray], options: dict[str, str] | None = None) -> bytes:
    """16 kHz mono FLAC of the given int16 blocks, encoded with PyAV."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="flac") as container:
        stream = container.add_stream("flac", rate=ENGINE_RATE, layout="mono", options=options)
        for block in blocks:
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(block.reshape(1, -1)), format="s16", layout="mono"
            )
            frame.sample_rate = ENGINE_RATE
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buffer.getvalue()


def _without_padding(flac: bytes) -> bytes:
    """``flac`` without its PADDING metadata blocks (FFmpeg's muxer writes 8 KB of it)."""
    blocks: list[bytearray] = []
    pos = 4  # after "fLaC"
    while True:
        header, size = flac[pos], int.from_bytes(flac[pos + 1 : pos + 4], "big")
        if header & 0x7F != 1:  # block type 1 is PADDING
            blocks.append(bytearray(flac[pos : pos + 4 + size]))
            blocks[-1][0] &= 0x7F  # clear the "last metadata block" flag
        pos += 4 + size
        if header & 0x80:
            break
    blocks[-1][0] |= 0x80
    return b"fLaC" + b"".join(blocks) + flac[pos:]


def bomb_flac(seconds: float = 41 * 60) -> bytes:
    """A constant non-zero signal in maximal (65535-sample) FLAC blocks: KB per hour."""
    block = np.full(65_535, 3_000, dtype=np.int16)
    total = round(seconds * ENGINE_RATE)
    sizes = [block.size] * (total // block.size) + [total % block.size]
    encoded = _encode_flac((block[:size] for size in sizes if size), {"frame_size": "65535"})
    return _without_padding(encoded)


def looped_speech_flac(seconds: float) -> bytes:
    """Real speech (en_librivox.wav, 16 kHz) repeated with 0.5 s gaps for ``seconds``."""
    speech, rate = read_wav(FIXTURES / "en_librivox.wav")
    assert rate == ENGINE_RATE
    looped = np.concatenate([speech, np.zeros(rate // 2, dtype=np.int16)])
    total = round(seconds * rate)

    def blocks() -> Iterator[np.ndarray]:
        done = 0
        while done < total:
            block = looped[: total - done]
            done += block.size
            yield block

    return _encode_flac(blocks())


def wav_declaring(rate: int, samples: int = 90) -> bytes:
    """A hand-built PCM16 mono WAV declaring ``rate`` Hz (224 bytes for 1 Hz and 90 samples)."""
    data = np.full(samples, 12_000, dtype="<i2").tobytes()
    fmt = struct.pack("<HHIIHH", 1, 1, rate, 2 * rate, 2, 16)  # PCM, mono, rate, B/s, align, bits
    riff_size = 4 + 8 + len(fmt) + 8 + len(data)
    header = b"RIFF" + struct.pack("<I", riff_size) + b"WAVE"
    header += b"fmt " + struct.pack("<I", len(fmt)) + fmt
    return header + b"data" + struct.pack("<I", len(data)) + data


def mp3_packet_positions(data: bytes) -> list[int]:
    """Byte offsets of the MP3 frames (packets) of ``data``."""
    with av.open(io.BytesIO(data)) as container:
        return [p.pos for p in container.demux(container.streams.audio[0]) if p.size]


def corrupted_mp3(every: int | None = None) -> bytes:
    """The fixture MP3 with 8 bytes overwritten at the frame nearest its middle.

    With ``every``, the header of every ``every``-th frame is overwritten as well.
    """
    original = (FIXTURES / "en_librivox_44k_stereo.mp3").read_bytes()
    positions = mp3_packet_positions(original)
    middle = next(pos for pos in positions if pos >= len(original) // 2)
    damaged = bytearray(original)
    for pos in [middle, *(positions[every::every] if every else [])]:
        damaged[pos : pos + 8] = b"\xff" * 8
    return bytes(damaged)


def _drain(decoder: StreamingDecoder) -> int:
    return sum(frame.size for frame in decoder.frames())


def test_limits_come_from_the_settings() -> None:
    settings = Settings(max_audio_duration_s=5, min_sample_rate=16_000, max_sample_rate=48_000)

    limits = DecodeLimits.from_settings(settings)

    assert (limits.max_duration_s, limits.min_sample_rate, limits.max_sample_rate) == (
        5,
        16_000,
        48_000,
    )
    assert limits.allowed_seconds(1_000) == limits.bomb_floor_s  # tiny files get the floor
    assert limits.allowed_seconds(1_000_000) == 1_000_000 / MIN_BYTES_PER_SECOND


@pytest.mark.parametrize("rate", [1, 4_000, 384_000])
def test_sample_rate_out_of_range_is_rejected_before_any_frame(rate: int) -> None:
    with pytest.raises(AudioFormatError) as caught:
        StreamingDecoder(wav_declaring(rate))

    assert f"{rate} Hz" in caught.value.message
    assert "8000-192000 Hz" in caught.value.message


def test_one_hertz_wav_is_224_bytes_and_rejected() -> None:
    wav = wav_declaring(1)
    assert len(wav) == 224
    with pytest.raises(AudioFormatError, match="sample rate of 1 Hz"):
        prepare_audio(wav, PreprocessingConfig(), {})


def test_duration_limit_stops_decoding_at_the_limit() -> None:
    limits = DecodeLimits(max_duration_s=5)
    with StreamingDecoder((FIXTURES / "en_librivox.flac").read_bytes(), limits) as decoder:
        with pytest.raises(AudioTooLongError) as caught:
            _drain(decoder)
        # Stopped on the first frame past 5 s, not after decoding the 27 s file.
        assert decoder.duration_s <= 5 + 4_608 / decoder.sample_rate

    assert "5 s" in caught.value.message
    assert "THEO_MAX_AUDIO_DURATION_S" in caught.value.message


def test_duration_limit_applies_to_prepare_audio() -> None:
    with pytest.raises(AudioTooLongError):
        prepare_audio(
            (FIXTURES / "en_librivox.wav").read_bytes(),
            PreprocessingConfig(),
            {},
            DecodeLimits(max_duration_s=10),
        )
    pcm = prepare_audio(
        (FIXTURES / "en_librivox.wav").read_bytes(),
        PreprocessingConfig(),
        {},
        DecodeLimits(max_duration_s=30),
    )
    assert len(pcm) / 2 / ENGINE_RATE == pytest.approx(27.13, abs=0.01)


def test_compression_bomb_is_stopped_at_the_ratio() -> None:
    bomb = bomb_flac()
    assert len(bomb) < 30_000  # 41 minutes in a few KB
    allowed = DecodeLimits().allowed_seconds(len(bomb))

    with StreamingDecoder(bomb) as decoder:
        with pytest.raises(AudioFormatError, match="decompression bomb") as caught:
            _drain(decoder)
        # Stopped within one (4 s) FLAC block of the allowance, not after 41 minutes.
        assert allowed < decoder.duration_s <= allowed + 65_535 / ENGINE_RATE

    assert f"{len(bomb)} bytes" in caught.value.message


def test_short_file_may_exceed_the_ratio_up_to_the_floor() -> None:
    # 50 s of constant signal is a bomb by ratio (a few hundred bytes) but under the floor.
    small = bomb_flac(50)
    assert len(small) / MIN_BYTES_PER_SECOND < 50

    pcm = prepare_audio(small, PreprocessingConfig(dc_remove=False), {})

    assert len(pcm) == 50 * ENGINE_RATE * 2


def test_low_bitrate_opus_speech_is_not_a_bomb() -> None:
    speech, rate = read_wav(FIXTURES / "en_librivox.wav")
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="ogg") as container:
        stream = container.add_stream("libopus", rate=48_000, layout="mono")
        stream.bit_rate = 6_000  # Opus's lowest usable speech rate
        resampler = av.AudioResampler(format="s16", layout="mono", rate=48_000)
        frame = av.AudioFrame.from_ndarray(speech.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = rate
        for resampled in [*resampler.resample(frame), *resampler.resample(None)]:
            for packet in stream.encode(resampled):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    opus = buffer.getvalue()
    assert len(opus) / 27.13 < 1_000  # bytes per second

    audio = decode_audio(opus)

    assert audio.duration_s == pytest.approx(27.13, abs=0.05)


def test_isolated_corrupt_packet_is_skipped() -> None:
    damaged = corrupted_mp3()
    with StreamingDecoder(damaged) as decoder:
        samples = _drain(decoder)
        decoder.check_has_signal()

    assert 1 <= decoder.corrupt_packets <= 2
    assert decoder.packets == len(
        mp3_packet_positions((FIXTURES / "en_librivox_44k_stereo.mp3").read_bytes())
    )
    assert samples / decoder.sample_rate == pytest.approx(27.13, abs=0.1)


def test_a_few_damaged_frames_are_tolerated() -> None:
    # One frame in 20 damaged: ~8% of the packets fail (a damaged frame can take the next
    # one with it), under the 10% allowed.
    with StreamingDecoder(corrupted_mp3(every=20)) as decoder:
        samples = _drain(decoder)

    assert 0.05 < decoder.corrupt_packets / decoder.packets <= MAX_CORRUPT_FRACTION
    assert samples / decoder.sample_rate > 24


def test_mostly_corrupt_file_is_rejected() -> None:
    damaged = corrupted_mp3(every=9)  # ~19% of the packets fail

    with pytest.raises(AudioFormatError, match=r"Could not decode.*packets are corrupted"):
        decode_audio(damaged)


def test_streaming_prepare_matches_whole_clip_preprocessing() -> None:
    for name in ("en_librivox_44k_stereo.mp3", "en_librivox_8k.wav", "en_librivox.flac"):
        data = (FIXTURES / name).read_bytes()
        whole = decode_audio(data)
        expected = np.frombuffer(
            to_pcm16(preprocess_batch(whole.samples, whole.sample_rate, PreprocessingConfig())),
            "<i2",
        )

        streamed = np.frombuffer(prepare_audio(data, PreprocessingConfig(), {}), "<i2")

        assert streamed.shape == expected.shape, name
        # soxr and the filters carry state across frames: at most a rounding step apart.
        assert np.max(np.abs(streamed.astype(int) - expected)) <= 1, name


def test_prepare_audio_reads_an_open_file(tmp_path: Path) -> None:
    path = tmp_path / "clip.m4a"
    path.write_bytes((FIXTURES / "en_librivox.m4a").read_bytes())
    with path.open("rb") as handle:
        pcm = prepare_audio(handle, PreprocessingConfig(), {})
    assert len(pcm) / 2 / ENGINE_RATE == pytest.approx(27.13, abs=0.1)


def test_empty_source_is_rejected_as_empty() -> None:
    with pytest.raises(AudioFormatError, match="empty"):
        prepare_audio(io.BytesIO(b""), PreprocessingConfig(), {})


def test_growing_buffer_keeps_every_byte() -> None:
    chunks = [np.arange(n, dtype="<i2") for n in (0, 1, 3_000, 700_000, 5)]
    with GrowingBuffer(initial_bytes=16) as buffer:
        for chunk in chunks:
            buffer.append(chunk)
        assert len(buffer) == 2 * sum(c.size for c in chunks)
        assert buffer.getvalue() == b"".join(c.tobytes() for c in chunks)


@pytest.mark.parametrize("minutes", [2, 6])
def test_python_heap_peak_is_the_returned_pcm_only(minutes: int) -> None:
    recording = looped_speech_flac(minutes * 60)
    pcm_bytes = minutes * 60 * ENGINE_RATE * 2
    tracemalloc.start()
    try:
        pcm = prepare_audio(recording, PreprocessingConfig(), {})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert len(pcm) == pcm_bytes
    # The growing buffer is a memory map (not traced); the heap holds the returned bytes and
    # a frame's worth of temporaries. Collecting float frames and concatenating was ~26x.
    assert peak < 1.1 * pcm_bytes + 2 * MB, f"{peak / MB:.1f} MB for {pcm_bytes / MB:.1f} MB"


_RSS_PROBE = """
import sys
from pathlib import Path
from theo.manifest import PreprocessingConfig
from theo.server.batch import prepare_audio

def kb(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])

data = Path(sys.argv[1]).read_bytes()
prepare_audio(Path(sys.argv[2]).read_bytes(), PreprocessingConfig(), {})  # first-use costs
base = kb("VmRSS")
Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
pcm = prepare_audio(data, PreprocessingConfig(), {})
print(kb("VmHWM") - base, len(pcm))
"""


@pytest.mark.parametrize("minutes", [2, 6])
def test_resident_peak_is_proportional_to_the_pcm_size(minutes: int, tmp_path: Path) -> None:
    if not Path("/proc/self/clear_refs").exists():
        pytest.skip("needs Linux /proc to reset the resident high-water mark")
    path = tmp_path / "long.flac"
    path.write_bytes(looped_speech_flac(minutes * 60))

    result = subprocess.run(
        [sys.executable, "-c", _RSS_PROBE, str(path), str(FIXTURES / "en_short.wav")],
        capture_output=True,
        text=True,
        check=True,
    )

    growth_kb, pcm_bytes = map(int, result.stdout.split())
    # The growing buffer and the returned copy, plus a constant for codec and frame state.
    assert growth_kb * 1024 < 2.2 * pcm_bytes + 8 * MB, f"{growth_kb / 1024:.1f} MB"


def test_narrowband_input_takes_the_models_narrowband_gain_unless_the_request_sets_it() -> None:
    def quiet_tone(rate: int) -> bytes:
        t = np.arange(rate * 2) / rate
        return wav_bytes((np.sin(2 * np.pi * 300 * t) * 0.05 * 32767).astype(np.int16), rate)

    def peak(pcm: bytes) -> float:
        return float(np.abs(np.frombuffer(pcm, "<i2")).max()) / 32768

    config = PreprocessingConfig(narrowband_gain_normalize=False)
    narrowband = quiet_tone(8_000)
    assert peak(prepare_audio(narrowband, config, {})) < 0.06  # as sent: no gain at 8 kHz
    assert peak(prepare_audio(narrowband, config, {"gain_normalize": True})) > 0.6  # asked
    assert peak(prepare_audio(narrowband, PreprocessingConfig(), {})) > 0.6  # general default
    assert peak(prepare_audio(quiet_tone(16_000), config, {})) > 0.6  # wideband keeps gain


def test_a_narrowband_dc_removal_default_applies_to_telephone_band_input_only() -> None:
    def offset_tone(rate: int) -> bytes:
        t = np.arange(rate * 2) / rate
        return wav_bytes(((np.sin(2 * np.pi * 300 * t) * 0.3 + 0.2) * 32767).astype(np.int16), rate)

    def offset(pcm: bytes) -> float:
        return float(np.frombuffer(pcm, "<i2").mean()) / 32768

    config = PreprocessingConfig(narrowband_dc_remove=False, gain_normalize=False)
    assert offset(prepare_audio(offset_tone(8_000), config, {})) > 0.15  # kept at 8 kHz
    assert abs(offset(prepare_audio(offset_tone(8_000), config, {"dc_remove": True}))) < 0.02
    assert abs(offset(prepare_audio(offset_tone(16_000), config, {}))) < 0.02  # wideband
