"""Chaos: realtime sessions and batch uploads while the real tiny.en worker is SIGKILLed.

Drives ``benchmarks/chaos.py`` (its own `theo serve` with only tiny.en) for about two
and a half minutes: a no-fault pass of three sessions streaming the librivox clip once
(the WER bound), then three sessions, started 9 s apart, each streaming it three times
at real time (15 utterances), and a quiet one that speaks its first utterance and then
stays silent, while the worker is killed every 30 s, and killed again as soon as its
successor is ready (the sessions are then opening new streams and sending their audio
again), and the clip is uploaded in batch every 15 s. The quiet session sees four or
more breaks without a final in between; the others see breaks mid-utterance, in pauses,
during a replay and while closing. What is asserted does not depend on timing: every
utterance gets exactly one final, segment ids strictly increase, no session is closed by
the server, the finals stay within the no-fault pass's WER bound, every batch answer is
200 or 503 with Retry-After, and the worker comes back after every kill.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TINY_EN
from tests.helpers.server import REPO_ROOT

pytestmark = pytest.mark.e2e

SESSIONS = 3
QUIET_SESSIONS = 1
LOOPS = 3
UTTERANCES_PER_LOOP = 5
# Kills at 30, 60 and 90 s of the chaos pass, each followed by a kill of the successor;
# the last session streams until about 102 s.
MIN_KILLS = 4


def _run_chaos(theo_home: Path, workdir: Path) -> dict[str, Any]:
    out = workdir / "chaos.json"
    command = [
        sys.executable,
        str(REPO_ROOT / "benchmarks" / "chaos.py"),
        "--theo-home",
        str(theo_home),
        "--model",
        TINY_EN,
        "--sessions",
        str(SESSIONS),
        "--loops",
        str(LOOPS),
        "--kill-interval",
        "30",
        "--batch-interval",
        "15",
        "--double-kill",
        "--quiet-sessions",
        str(QUIET_SESSIONS),
        "--baseline-loops",
        "1",
        "--sample-interval",
        "5",
        "--workdir",
        str(workdir),
        "--json",
        str(out),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=540)
    print(result.stdout)
    assert result.returncode == 0 and out.exists(), result.stderr[-3000:]
    figures: dict[str, Any] = json.loads(out.read_text())
    return figures


def _log_excerpt(figures: dict[str, Any]) -> str:
    """The server log's warnings and errors, for a failure message."""
    lines = Path(figures["log_path"]).read_text(errors="replace").splitlines()
    wanted = ('"level": "warning"', '"level": "error"', "session_recovered", "session_closed")
    return "\n".join(line[:300] for line in lines if any(w in line for w in wanted))[-6000:]


def test_sessions_survive_a_worker_killed_every_30_s(theo_home: Path, tmp_path: Path) -> None:
    figures = _run_chaos(theo_home, tmp_path)
    context = f"{figures['failures']}\n{_log_excerpt(figures)}"

    assert len(figures["kills"]) >= MIN_KILLS, figures["kills"]
    for kill in figures["kills"]:
        assert kill["error"] is None and kill["new_pid"] not in (None, kill["pid"]), kill
    sessions = figures["sessions"]
    assert len(sessions) == SESSIONS + QUIET_SESSIONS
    # Every session was hit: the worker died under it at least once.
    assert all(s["worker_crashed"] >= 1 for s in sessions), context
    for s in sessions:
        assert s["utterances"] == (1 if s["quiet"] else LOOPS * UTTERANCES_PER_LOOP)
        # Exactly one final per utterance: none lost, none twice, none over no speech.
        assert s["missing"] == [] and s["matched_twice"] == {}, context
        assert s["unmatched"] == [] and s["finals"] == s["utterances"], context
        assert s["duplicate_ids"] == [] and s["ids_increasing"], context
        assert s["repeated_text"] == [] and s["misplaced"] == [], context
        assert s["empty_finals"] == [], context
        # Only the recoverable crash reports; the client closed every session.
        assert s["other_errors"] == [] and s["frames_dropped"] == 0, context
        assert s["closed_by_server"] is None and s["close_code"] == 1000, context
        if not s["quiet"]:  # one utterance is too few words for a WER bound
            assert s["wer"] <= figures["wer_bound"], context
    assert figures["baseline_wer"] and figures["wer_bound"] <= 0.25, figures["baseline_wer"]
    assert figures["batches"], "no batch upload was answered"
    for batch in figures["batches"]:
        assert batch["status"] in (200, 503), batch
        if batch["status"] == 503:
            assert batch["retry_after"], batch
    assert figures["failures"] == [], context
    # The server is whole at the end: the worker is serving again.
    assert figures["final_health"]["status"] == "ok", figures["final_health"]
