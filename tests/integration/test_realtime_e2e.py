"""Realtime transcription over a real WebSocket against `theo serve` with real models."""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

import pytest
import websockets

from tests.conftest import BASE, TINY_EN
from tests.helpers.realtime import SessionLog, pcm16_of, run_session, silence, ws_url
from tests.helpers.server import RunningServer, wait_for
from tests.helpers.wer import normalize, wer
from theo.cores import available_cores

pytestmark = pytest.mark.e2e

UTTERANCES = [
    "and mister john dashwood had then leisure to consider how much there might be "
    "prudently in his power to do for them",
    "he was not an ill disposed young man",
    "unless to be rather cold hearted and rather selfish is to be ill disposed",
    "had he married a more a amiable woman he might have been made still more "
    "respectable than he was",
    "he might even have been made amiable himself",
]
SPEECH_PT = (
    "Bom dia. Eu gostaria de saber o saldo da minha conta corrente. Também preciso pagar a "
    "conta de luz deste mês. Obrigado pela ajuda."
)


def _segments(log: SessionLog) -> dict[int, list[dict[str, Any]]]:
    by_segment: dict[int, list[dict[str, Any]]] = {}
    for event in log.events:
        if "segment_id" in event:
            by_segment.setdefault(event["segment_id"], []).append(event)
    return by_segment


def _assert_segment_protocol(events: list[dict[str, Any]], expect_partial: bool) -> None:
    kinds = [e["type"] for e in events]
    assert kinds[0] == "vad.speech_start", kinds
    assert kinds[-2:] == ["transcript.final", "vad.speech_end"], kinds
    assert set(kinds[1:-2]) <= {"transcript.partial"}, kinds
    # Partials carry the engine's words and the final's text is post-processed ("2.500
    # reais" -> "R$ 2.500,00"): compare with the final's engine words.
    final_event = events[-2]
    engine_words = " ".join(w["word"] for w in final_event["words"]) or final_event["text"]
    final = normalize(engine_words).split()
    partials = [normalize(e["text"]).split() for e in events if e["type"] == "transcript.partial"]
    if expect_partial:
        assert partials, kinds
    # Partials only grow; the final decodes the segment afresh and may correct them.
    for earlier, later in itertools.pairwise(partials):
        assert later[: len(earlier)] == earlier, (earlier, later)
    assert final or not partials, kinds


def test_librivox_utterances_stream_in_order(server: RunningServer) -> None:
    audio, rate = pcm16_of("en_librivox.wav")
    log = asyncio.run(run_session(ws_url(server.base_url, TINY_EN), audio, rate))
    assert log.events[0]["type"] == "session.created"
    assert log.events[0]["model"] == TINY_EN
    assert log.events[-1] == {
        "type": "session.closed",
        "session_id": log.events[0]["session_id"],
        "reason": "client_close",
    }
    segments = _segments(log)
    assert sorted(segments) == list(range(1, 6)), log.types()
    for segment_id, events in segments.items():
        _assert_segment_protocol(events, expect_partial=segment_id != 2)
    finals = log.of("transcript.final")
    # WER over the whole recording, like the batch tests; each utterance stays close too
    # (tiny.en hears "ill disposed" as "old-sposed" in the 8-word one, batch or streaming).
    assert wer(" ".join(UTTERANCES), " ".join(log.finals())) <= 0.15, log.finals()
    for final, reference in zip(finals, UTTERANCES, strict=True):
        assert wer(reference, final["text"]) <= 0.30, final["text"]
        assert final["language"] == "en"
        assert 0.0 < final["confidence"] <= 1.0
        assert final["start_ms"] < final["end_ms"]
        assert final["words"] and final["words"][0]["start_ms"] >= final["start_ms"] - 50
    starts = [f["start_ms"] for f in finals]
    assert starts == sorted(starts)
    assert log.close_code == 1000


def test_portuguese_finals_are_post_processed(server: RunningServer) -> None:
    # The VAD rightly cuts segments at pauses of 300 ms; the dictated CPF and the amount
    # with cents both pause mid-entity, so this uses an amount said in one breath.
    money, rate = pcm16_of("pt_br_money.wav")
    speech, _ = pcm16_of("pt_br_speech.wav")
    audio = money + silence(1.0, rate) + speech
    log = asyncio.run(run_session(ws_url(server.base_url, BASE, "pt"), audio, rate))
    finals = " ".join(log.finals())
    assert "R$ 2.500,00" in finals, log.finals()
    assert wer(SPEECH_PT, finals.split("2.500,00.")[-1]) <= 0.15, log.finals()
    for events in _segments(log).values():
        _assert_segment_protocol(events, expect_partial=False)
    assert all(f["language"] == "pt" for f in log.of("transcript.final"))
    # Partials are never post-processed: they carry the engine's own text.
    assert all("R$ 2.500,00" not in p["text"] for p in log.of("transcript.partial"))


def _two_utterances() -> tuple[bytes, int]:
    first, rate = pcm16_of("en_short.wav")
    return first + silence(0.8, rate) + first, rate


def test_concurrent_sessions_on_two_models(server: RunningServer) -> None:
    english, rate = _two_utterances()
    portuguese, _ = pcm16_of("pt_br_money.wav")

    async def both() -> list[SessionLog]:
        return await asyncio.gather(
            run_session(ws_url(server.base_url, TINY_EN), english, rate),
            run_session(ws_url(server.base_url, BASE, "pt"), portuguese, rate),
        )

    en_log, pt_log = asyncio.run(both())
    assert len(en_log.finals()) == 2
    assert all("young man" in normalize(text) for text in en_log.finals()), en_log.finals()
    assert "R$ 2.500,00" in " ".join(pt_log.finals()), pt_log.finals()


def test_four_sessions_on_one_model(server: RunningServer) -> None:
    clips = ["en_short.wav", "en_short.wav", "pt_br_speech.wav", "en_short.wav"]

    async def four() -> list[SessionLog]:
        sessions = []
        for index, clip in enumerate(clips):
            audio, rate = pcm16_of(clip)
            model, language = (BASE, "pt") if clip.startswith("pt") else (TINY_EN, None)
            if index == 3:
                audio = audio + silence(0.8, rate) + audio
            sessions.append(run_session(ws_url(server.base_url, model, language), audio, rate))
        return await asyncio.gather(*sessions)

    logs = asyncio.run(four())
    assert all("young man" in normalize(" ".join(logs[i].finals())) for i in (0, 1, 3))
    assert len(logs[3].finals()) == 2
    assert "saldo" in " ".join(logs[2].finals()).lower()
    session_ids = {log.events[0]["session_id"] for log in logs}
    assert len(session_ids) == 4
    # The three tiny.en sessions decoded side by side on the worker's engine lanes (two
    # CTranslate2 replicas on a CPU with 2+ cores), as its next health probe tells.
    lanes = min(2, available_cores())

    def worker_lanes() -> object:
        return next(w for w in server.health()["workers"] if w["model"] == TINY_EN)["engine_lanes"]

    wait_for(lambda: worker_lanes() == lanes, 20, f"/health to show {lanes} engine lanes")
    wait_for(
        lambda: server.worker_metrics("theo_scheduler_realtime_running_max", TINY_EN) == [lanes],
        20,
        "realtime decodes on every lane at once",
    )


def test_configure_mid_session(server: RunningServer) -> None:
    pix, rate = pcm16_of("pt_br_pix.wav")
    short8k, rate8k = pcm16_of("en_librivox_8k.wav")

    async def scenario() -> tuple[SessionLog, SessionLog]:
        # hot words + language + partials off, set after connecting
        configured = await run_session(
            ws_url(server.base_url, BASE),
            pix,
            rate,
            commands_before=[
                {
                    "type": "session.configure",
                    "language": "pt",
                    "hot_words": ["PIX"],
                    "enable_partial_transcripts": False,
                }
            ],
        )
        # telephone audio at 8 kHz
        telephone = await run_session(
            ws_url(server.base_url, TINY_EN),
            short8k[: rate8k * 2 * 8],
            rate8k,
            commands_before=[{"type": "session.configure", "input_sample_rate": 8000}],
        )
        return configured, telephone

    configured, telephone = asyncio.run(scenario())
    updated = configured.of("session.updated")
    assert updated and updated[0]["config"]["language"] == "pt"
    assert updated[0]["config"]["enable_partial_transcripts"] is False
    assert not configured.of("transcript.partial")
    assert "PIX" in " ".join(configured.finals()), configured.finals()
    assert configured.of("transcript.final")[0]["language"] == "pt"
    assert telephone.of("session.updated")[0]["config"]["input_sample_rate"] == 8000
    assert "dashwood" in " ".join(telephone.finals()).lower(), telephone.finals()


def test_language_change_takes_effect_for_the_next_segment(server: RunningServer) -> None:
    portuguese, rate = pcm16_of("pt_br_money.wav")

    async def scenario() -> SessionLog:
        url = ws_url(server.base_url, BASE, "en")
        return await run_session(
            url, portuguese, rate, commands_before=[{"type": "session.configure", "language": "pt"}]
        )

    log = asyncio.run(scenario())
    assert log.of("transcript.final")[0]["language"] == "pt"
    assert "fatura" in " ".join(log.finals()).lower()


def test_bad_input_gets_error_events_and_other_sessions_continue(server: RunningServer) -> None:
    audio, rate = pcm16_of("en_short.wav")

    async def scenario() -> tuple[list[dict[str, Any]], SessionLog]:
        healthy = asyncio.create_task(run_session(ws_url(server.base_url, TINY_EN), audio, rate))
        received: list[dict[str, Any]] = []
        async with websockets.connect(ws_url(server.base_url, TINY_EN)) as ws:
            received.append(json.loads(await ws.recv()))
            for message in (
                "{not json",
                json.dumps({"type": "session.dance"}),
                json.dumps(["not", "an", "object"]),
                json.dumps({"type": "session.configure", "vad_sensitivity": "extreme"}),
                json.dumps({"type": "session.configure", "input_sample_rate": 4000}),
                json.dumps({"type": "session.configure", "volume": 11}),
            ):
                await ws.send(message)
                received.append(json.loads(await ws.recv()))
            await ws.send(b"\x01\x02\x03")
            received.append(json.loads(await ws.recv()))
            await ws.send(json.dumps({"type": "session.close"}))
            received.append(json.loads(await ws.recv()))
            await ws.send(audio[:640])
            received.append(json.loads(await ws.recv()))
        return received, await healthy

    received, healthy = asyncio.run(scenario())
    assert received[0]["type"] == "session.created"
    errors = received[1:8]
    assert [e["type"] for e in errors] == ["error"] * 7
    assert [e["code"] for e in errors] == [
        "invalid_json",
        "unknown_command",
        "invalid_command",
        "invalid_value",
        "invalid_value",
        "invalid_value",
        "invalid_value",
    ]
    assert all(e["recoverable"] for e in errors)
    assert errors[3]["param"] == "vad_sensitivity"
    assert errors[4]["param"] == "input_sample_rate"
    assert errors[5]["param"] == "volume"
    assert errors[6]["param"] == "audio"
    assert received[8]["type"] == "session.closed"
    assert received[9] == {
        "type": "error",
        "code": "session_closed",
        "message": "The session is closed.",
        "recoverable": False,
    }
    assert "young man" in normalize(" ".join(healthy.finals()))


def test_unknown_model_closes_with_1008(server: RunningServer) -> None:
    async def scenario() -> tuple[dict[str, Any], int | None]:
        async with websockets.connect(ws_url(server.base_url, "whisper-9000")) as ws:
            event = json.loads(await ws.recv())
            with pytest.raises(websockets.ConnectionClosed):
                await ws.recv()
            return event, ws.close_code

    event, code = asyncio.run(scenario())
    assert event["type"] == "error" and event["code"] == "model_not_found"
    assert event["recoverable"] is False
    assert code == 1008


def test_realtime_metrics_and_a_clean_log(server: RunningServer) -> None:
    with server.client() as client:
        text = client.get("/metrics").text
    # Clients that close first must not leave tracebacks behind.
    assert "Exception in ASGI application" not in server.log_text()
    assert "theo_stt_active_sessions 0.0" in text
    assert 'theo_stt_vad_events_total{event="speech_start"}' in text
    assert "theo_stt_ttfb_seconds_count" in text
    assert "theo_stt_final_delay_seconds_count" in text


def test_protocol_abuse_closes_with_1008(server: RunningServer) -> None:
    async def scenario() -> tuple[list[dict[str, Any]], int | None, str | None]:
        received: list[dict[str, Any]] = []
        async with websockets.connect(ws_url(server.base_url, TINY_EN)) as ws:
            received.append(json.loads(await ws.recv()))
            await ws.send(b"\0" * 200_000)
            received.append(json.loads(await ws.recv()))
            for _ in range(25):
                await ws.send("{broken")
            with pytest.raises(websockets.ConnectionClosed):
                while True:
                    received.append(json.loads(await ws.recv()))
            return received, ws.close_code, ws.close_reason

    received, code, reason = asyncio.run(scenario())
    assert received[1]["code"] == "frame_too_large" and received[1]["recoverable"] is True
    assert [e["code"] for e in received[2:]] == ["invalid_json"] * 19
    assert code == 1008
    assert reason == "too many invalid messages"


def test_unstable_partials_show_the_first_words_before_they_are_agreed(
    server: RunningServer,
) -> None:
    audio, rate = pcm16_of("en_librivox.wav")
    first_utterance = audio[: round(7.1 * rate) * 2]
    configure = {"type": "session.configure", "unstable_partials": True}
    url = ws_url(server.base_url, TINY_EN)
    log = asyncio.run(run_session(url, first_utterance, rate, commands_before=[configure]))
    default = asyncio.run(run_session(url, first_utterance, rate))

    partials = log.of("transcript.partial")
    assert partials and all("unstable_text" in p for p in partials), partials
    # The first pass's words come as unstable text before two passes agree on any.
    first_words = next(i for i, p in enumerate(partials) if p["text"] or p["unstable_text"])
    first_agreed = next(i for i, p in enumerate(partials) if p["text"])
    assert first_words < first_agreed and partials[first_words]["text"] == ""
    reference = normalize(UTTERANCES[0]).split()
    guessed = normalize(partials[first_words]["unstable_text"]).split()
    assert guessed and guessed[0] in reference[:3], guessed
    # The agreed text is as without the option: append-only, then the final.
    _assert_segment_protocol(_segments(log)[1], expect_partial=True)
    assert wer(UTTERANCES[0], log.finals()[0]) <= 0.2, log.finals()
    # Without it, partials are unchanged: no unstable_text, each one longer.
    texts = [p["text"] for p in default.of("transcript.partial")]
    assert texts and all("unstable_text" not in p for p in default.of("transcript.partial"))
    assert all(len(b) > len(a) for a, b in itertools.pairwise(texts)), texts
