"""Drain a worker's merged stdout/stderr into the server's structured log.

Every line reaches the log tagged with the worker id, so a chatty worker can never
fill a pipe nobody reads and hang.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from theo.logging import get_logger

log = get_logger("worker.output")
_CHUNK = 64 * 1024


def _relog(worker_id: str, line: str) -> None:
    record: Any = None
    if line.startswith("{"):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            record = None
    if isinstance(record, dict):
        event = str(record.pop("event", "worker_log"))
        level = str(record.pop("level", "info")).lower()
        record.pop("timestamp", None)
        record.pop("worker_id", None)
        record["worker_component"] = record.pop("component", None)
        fields = {k: v for k, v in record.items() if v is not None}
        log.log(logging.getLevelName(level.upper()), event, worker_id=worker_id, **fields)
    else:
        log.info("worker_output", worker_id=worker_id, line=line)


async def drain_lines(stream: asyncio.StreamReader, worker_id: str) -> None:
    """Read ``stream`` until EOF, logging each line; overlong lines are split, never block."""
    pending = b""
    while True:
        chunk = await stream.read(_CHUNK)
        if not chunk:
            break
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for raw in lines:
            text = raw.decode("utf-8", errors="replace").rstrip("\r")
            if text:
                _relog(worker_id, text)
        if len(pending) > _CHUNK:
            _relog(worker_id, pending.decode("utf-8", errors="replace"))
            pending = b""
    if pending:
        _relog(worker_id, pending.decode("utf-8", errors="replace"))
