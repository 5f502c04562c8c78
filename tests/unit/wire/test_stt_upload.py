"""A batch request sent in pieces: the fields first, then the audio, which the worker joins
back into the message protobuf would have built."""

from __future__ import annotations

import pytest

from theo.types import Task, TranscribeParams, TranscribeRequest
from theo.wire.stt import params_from_proto, request_to_proto, request_to_upload


@pytest.mark.parametrize("audio_bytes", [0, 2, 999, 1000, 1001, 25_000])
def test_upload_messages_rebuild_the_request(audio_bytes: int) -> None:
    request = TranscribeRequest(
        model="m",
        audio_pcm16=bytes(i % 251 for i in range(audio_bytes)),
        params=TranscribeParams(
            language="pt",
            prompt="PIX",
            task=Task.TRANSLATE,
            hot_words=("PIX", "TED"),
            coarse_segments=True,
        ),
        request_id="req-1",
    )
    first, *pieces = request_to_upload(request, chunk_bytes=1000)
    assert first.audio_pcm16 == b""
    assert all(len(p.audio_pcm16) <= 1000 and not p.request_id for p in pieces)
    assert len(pieces) == -(-audio_bytes // 1000)
    first.audio_pcm16 = b"".join(p.audio_pcm16 for p in pieces)
    assert first == request_to_proto(request)
    assert params_from_proto(first) == request.params
