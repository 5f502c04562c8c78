"""A call's playout: 20 ms frames, padded, per-reply drops, talkspurts, real-time pace."""

from __future__ import annotations

import asyncio

from theo.server.calls.playout import Playout


def _run(scenario: object) -> object:
    return asyncio.run(scenario)  # type: ignore[arg-type]


def test_frames_are_20_ms_the_last_one_padded_and_paced() -> None:
    sent: list[tuple[float, bytes, bool]] = []

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        playout = Playout(8000, lambda frame, first: sent.append((loop.time(), frame, first)), "c")
        playout.play("r1", b"\x01\x00" * 400)  # 50 ms
        await asyncio.sleep(0.2)
        await playout.close()

    _run(scenario())
    assert [len(frame) for _, frame, _ in sent] == [320, 320, 320]
    assert sent[2][1] == b"\x01\x00" * 80 + bytes(160)  # 10 ms of audio, 10 ms of silence
    assert [first for _, _, first in sent] == [True, False, False]
    assert sent[2][0] - sent[0][0] >= 0.035  # two periods, not a burst


def test_drop_forgets_one_reply_and_keeps_the_next() -> None:
    sent: list[bytes] = []

    async def scenario() -> None:
        playout = Playout(8000, lambda frame, first: sent.append(frame), "c")
        playout.play("r1", b"\x01\x00" * 1600)  # 200 ms
        playout.play("r2", b"\x02\x00" * 160)  # 20 ms
        await asyncio.sleep(0.05)
        playout.drop("r1")
        await asyncio.sleep(0.1)
        await playout.close()

    _run(scenario())
    assert sent[-1] == b"\x02\x00" * 160
    assert len(sent) <= 5  # r1 stopped within a frame of the drop


def test_audio_after_a_pause_starts_a_new_talkspurt() -> None:
    flags: list[bool] = []

    async def scenario() -> None:
        playout = Playout(16000, lambda frame, first: flags.append(first), "c")
        playout.play("r1", bytes(640))
        await asyncio.sleep(0.1)
        playout.play("r2", bytes(1280))
        await asyncio.sleep(0.1)
        await playout.close()

    _run(scenario())
    assert flags == [True, True, False]
