"""``--reply echo``: the bot's commands and bookkeeping, and the WAV sink."""

from __future__ import annotations

import wave
from pathlib import Path

from theo.cli.reply import EchoBot, WavSink


def test_the_echo_bot_speaks_each_final_once_and_tracks_it() -> None:
    bot = EchoBot()
    assert bot.answer("   ") is None
    speak = bot.answer(" Hello there. ")
    assert speak == {"type": "tts.speak", "text": "Hello there.", "request_id": "echo_1"}
    assert bot.said({"type": "tts.speaking_start", "request_id": "echo_1"}) == "Hello there."
    assert not bot.idle_for(0)
    bot.ended({"type": "tts.speaking_end", "request_id": "echo_1"})
    assert bot.idle_for(0) and not bot.idle_for(60)
    assert bot.said({"request_id": "other"}) is None


def test_the_wav_sink_writes_the_replies_back_to_back(tmp_path: Path) -> None:
    path = tmp_path / "out.wav"
    sink = WavSink(path, 8000)
    assert not sink.busy
    sink.write(b"\x01\x00" * 100)
    sink.write(b"\x02\x00" * 50)
    sink.close()
    with wave.open(str(path), "rb") as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (8000, 1, 2)
        assert wav.readframes(200) == b"\x01\x00" * 100 + b"\x02\x00" * 50
