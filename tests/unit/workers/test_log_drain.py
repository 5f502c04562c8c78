from __future__ import annotations

import asyncio
import json

import structlog

from theo.workers.log_drain import drain_lines


async def test_every_line_is_logged_with_the_worker_id() -> None:
    reader = asyncio.StreamReader()
    reader.feed_data(
        json.dumps({"event": "worker_ready", "level": "info", "port": 1}).encode() + b"\n"
    )
    reader.feed_data(b"plain C++ warning\n")
    reader.feed_data(b"x" * 200_000 + b"\n")
    reader.feed_data(b"no trailing newline")
    reader.feed_eof()
    with structlog.testing.capture_logs() as logs:
        await asyncio.wait_for(drain_lines(reader, "stt-a"), 5)
    assert all(entry["worker_id"] == "stt-a" for entry in logs)
    assert logs[0]["event"] == "worker_ready" and logs[0]["port"] == 1
    assert logs[1]["line"] == "plain C++ warning"
    assert sum(len(e.get("line", "")) for e in logs[2:-1]) == 200_000
    assert logs[-1]["line"] == "no trailing newline"
