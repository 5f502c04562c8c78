"""The batch request on the wire: the audio appended to the serialized fields equals the
message protobuf would have built, so the worker parses it unchanged."""

from __future__ import annotations

import pytest

from theo.proto import stt_worker_pb2 as pb
from theo.types import Task, TranscribeParams, TranscribeRequest
from theo.workers.stt.converters import params_from_proto, request_to_proto, request_to_wire


@pytest.mark.parametrize("audio_bytes", [0, 1, 127, 128, 16_383, 16_384, 3_200_000])
def test_wire_bytes_parse_as_the_same_message(audio_bytes: int) -> None:
    request = TranscribeRequest(
        model="m",
        audio_pcm16=bytes(i % 251 for i in range(audio_bytes)),
        params=TranscribeParams(
            language="pt", prompt="PIX", task=Task.TRANSLATE, hot_words=("PIX", "TED")
        ),
        request_id="req-1",
    )
    parsed = pb.TranscribeFileRequest.FromString(request_to_wire(request))
    assert parsed == request_to_proto(request)
    assert parsed.audio_pcm16 == request.audio_pcm16
    assert params_from_proto(parsed).hot_words == ("PIX", "TED")
