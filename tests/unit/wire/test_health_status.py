"""Both worker kinds answer Health with the same status for the same state."""

from __future__ import annotations

import pytest

from theo.wire.health import health_status
from theo.wire.proto import stt_worker_pb2, tts_worker_pb2


@pytest.mark.parametrize("pb", [stt_worker_pb2, tts_worker_pb2])
def test_status_follows_load_error_then_loading_then_busy_or_ready(pb: object) -> None:
    def status(load_error: str, loaded: bool, active: int) -> int:
        answer = pb.HealthResponse(status=health_status(load_error, loaded, active))  # type: ignore[attr-defined]
        return int(answer.status)

    assert status("", False, 0) == pb.WORKER_STATUS_LOADING  # type: ignore[attr-defined]
    assert status("", True, 0) == pb.WORKER_STATUS_READY  # type: ignore[attr-defined]
    assert status("", True, 3) == pb.WORKER_STATUS_BUSY  # type: ignore[attr-defined]
    assert status("no weights", False, 0) == pb.WORKER_STATUS_ERROR  # type: ignore[attr-defined]
    assert status("no weights", True, 1) == pb.WORKER_STATUS_ERROR  # type: ignore[attr-defined]
