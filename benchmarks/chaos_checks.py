"""What the chaos benchmark (``chaos.py``) checks and prints: its invariants and report.

The sessions' traces (every event with its arrival time) are matched against the clip's
utterances; the kills, batch answers and server log are summarised. Each broken
invariant becomes one line of ``failures``.
"""

from __future__ import annotations

import itertools
import json
import math
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from harness import percentile

from tests.helpers.wer import normalize, wer

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "audio"
DEFAULT_CLIP = FIXTURES / "en_librivox.wav"
LOOP_GAP_S = 0.6
MIN_SILENCE_S = 0.5
MISPLACED_WER = 0.5
# The default clip's five utterances (the tests' ``UTTERANCES``), in order.
LIBRIVOX_UTTERANCES = (
    "and mister john dashwood had then leisure to consider how much there might be "
    "prudently in his power to do for them",
    "he was not an ill disposed young man",
    "unless to be rather cold hearted and rather selfish is to be ill disposed",
    "had he married a more a amiable woman he might have been made still more "
    "respectable than he was",
    "he might even have been made amiable himself",
)


@dataclass
class Clip:
    """The streamed clip: PCM16, where its utterances lie, what they say."""

    pcm16: bytes
    rate: int
    spans: list[tuple[float, float]]
    reference: str | None
    utterances: tuple[str, ...] | None

    @property
    def period_s(self) -> float:
        return len(self.pcm16) / (self.rate * 2) + LOOP_GAP_S


@dataclass
class Trace:
    """What one session saw: every event with its arrival time, and how it ended."""

    index: int
    events: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    loops: int = 0
    spoken: int | None = None
    """How many of the looped clip's utterances were streamed (None: all of them); the
    rest of the session's audio was silence."""
    sent_close: bool = False
    close_code: int | None = None
    close_reason: str = ""
    send_error: str | None = None
    connect_retries: int = 0
    """Connections refused with 1013 while the worker restarted, before this one."""


def load_clip(path: Path) -> Clip:
    """The clip, split into utterances at its runs of digital silence."""
    with wave.open(str(path), "rb") as wav:
        if wav.getnchannels() != 1 or wav.getsampwidth() != 2:
            raise ValueError(f"{path}: use a mono 16-bit WAV")
        rate = wav.getframerate()
        pcm16 = wav.readframes(wav.getnframes())
    samples = np.frombuffer(pcm16, dtype="<i2")
    silent = np.concatenate([[False], samples == 0, [False]])
    edges = np.flatnonzero(np.diff(silent.astype(np.int8)))
    gaps = [(a, b) for a, b in zip(edges[::2], edges[1::2], strict=True)]
    gaps = [(a, b) for a, b in gaps if b - a >= MIN_SILENCE_S * rate]
    bounds = [0, *[i for gap in gaps for i in gap], samples.size]
    spans = [
        (float(a / rate), float(b / rate))
        for a, b in zip(bounds[::2], bounds[1::2], strict=True)
        if b > a
    ]
    reference_path = path.with_suffix(".txt")
    reference = reference_path.read_text().strip() if reference_path.exists() else None
    utterances = LIBRIVOX_UTTERANCES if path.name == DEFAULT_CLIP.name else None
    if utterances is not None and len(utterances) != len(spans):
        utterances = None
    return Clip(pcm16, rate, spans, reference, utterances)


def _repeats(previous: str, text: str) -> bool:
    """Whether ``text`` repeats the previous final (the same, or holding all of it)."""
    before, now = normalize(previous), normalize(text)
    if not before or not now:
        return False
    return now == before or (len(before.split()) >= 3 and f" {before} " in f" {now} ")


def analyse_session(trace: Trace, clip: Clip) -> dict[str, Any]:
    """The session's finals against the utterances it streamed, and how it ended."""
    finals = [(t, e) for t, e in trace.events if e["type"] == "transcript.final"]
    errors = [e for _, e in trace.events if e["type"] == "error"]
    closed = [e for _, e in trace.events if e["type"] == "session.closed"]
    n = len(clip.spans)
    spans = [
        (loop * clip.period_s + a, loop * clip.period_s + b, loop * n + j)
        for loop in range(trace.loops)
        for j, (a, b) in enumerate(clip.spans)
    ][: trace.spoken]
    matched: dict[int, list[int]] = {}
    unmatched, misplaced, repeated, empty = [], [], [], []
    previous = ""
    for _, final in finals:
        start, end = final["start_ms"] / 1000, final["end_ms"] / 1000
        best = max(spans, key=lambda s: min(end, s[1]) - max(start, s[0]))
        sid, text = final["segment_id"], final["text"]
        if min(end, best[1]) - max(start, best[0]) <= 0:
            unmatched.append(sid)
        else:
            matched.setdefault(best[2], []).append(sid)
            if clip.utterances and normalize(text):
                own = clip.utterances[best[2] % n]
                if wer(own, text) > MISPLACED_WER:
                    misplaced.append({"segment_id": sid, "expected": own, "text": text})
        if not normalize(text):
            empty.append(sid)
        if _repeats(previous, text):
            repeated.append({"segment_id": sid, "previous": previous, "text": text})
        previous = text or previous
    ids = [e["segment_id"] for _, e in finals]
    expected = len(spans)
    joined = " ".join(e["text"] for _, e in finals)
    if clip.utterances:
        reference: str | None = " ".join(clip.utterances[u % n] for *_, u in spans)
    elif clip.reference and expected == trace.loops * n:
        reference = " ".join([clip.reference] * trace.loops)
    else:
        reference = None
    server_closed = None
    if closed and closed[-1].get("reason") != "client_close":
        server_closed = f"session.closed reason={closed[-1].get('reason')}"
    elif not trace.sent_close or not closed:
        server_closed = trace.send_error or "closed before the client's session.close"
    if server_closed:
        server_closed += f" (close code {trace.close_code}, {trace.close_reason!r})"
    return {
        "session": trace.index,
        "quiet": trace.spoken is not None,
        "utterances": expected,
        "finals": len(finals),
        "missing": [u for u in range(expected) if u not in matched],
        "matched_twice": {u: s for u, s in matched.items() if len(s) > 1},
        "unmatched": unmatched,
        "duplicate_ids": sorted({i for i in ids if ids.count(i) > 1}),
        "ids_increasing": all(a < b for a, b in itertools.pairwise(ids)),
        "speech_starts": sum(1 for _, e in trace.events if e["type"] == "vad.speech_start"),
        "repeated_text": repeated,
        "misplaced": misplaced,
        "empty_finals": empty,
        "worker_crashed": sum(1 for e in errors if e.get("code") == "worker_crashed"),
        "other_errors": [e for e in errors if e.get("code") != "worker_crashed"],
        "frames_dropped": sum(1 for _, e in trace.events if e["type"] == "session.frames_dropped"),
        "rate_limit": sum(1 for _, e in trace.events if e["type"] == "session.rate_limit"),
        "wer": wer(reference, joined) if reference else None,
        "closed_by_server": server_closed,
        "close_code": trace.close_code,
        "connect_retries": trace.connect_retries,
        "finals_text": [(e["segment_id"], e["text"]) for _, e in finals],
    }


def session_failures(result: dict[str, Any], bound: float, label: str) -> list[str]:
    """The invariants one session broke, each as a line."""
    quiet = " (quiet)" if result["quiet"] else ""
    s = f"{label} session {result['session']}{quiet}"
    checks = [
        (
            result["finals"] != result["utterances"],
            f"{result['finals']} finals for {result['utterances']} utterances",
        ),
        (result["missing"], f"utterances without a final: {result['missing']}"),
        (result["matched_twice"], f"utterances with 2+ finals: {result['matched_twice']}"),
        (result["unmatched"], f"finals over no utterance: {result['unmatched']}"),
        (result["duplicate_ids"], f"segment ids twice: {result['duplicate_ids']}"),
        (not result["ids_increasing"], "segment ids not strictly increasing"),
        (result["repeated_text"], f"repeated text: {result['repeated_text']}"),
        (result["misplaced"], f"finals unlike their utterance: {result['misplaced']}"),
        (result["empty_finals"], f"empty finals: {result['empty_finals']}"),
        (result["other_errors"], f"errors: {result['other_errors']}"),
        (result["frames_dropped"], f"{result['frames_dropped']} frames_dropped events"),
        (result["closed_by_server"], f"closed by the server: {result['closed_by_server']}"),
        (
            # One utterance (a quiet session's) is too few words for a WER bound.
            result["wer"] is not None and not result["quiet"] and result["wer"] > bound,
            f"WER {result['wer'] or 0:.3f} over the bound {bound:.3f}",
        ),
    ]
    return [f"{s}: {message}" for failed, message in checks if failed]


def analyse_kills(
    kills: list[dict[str, Any]], traces: list[Trace], started: float
) -> list[dict[str, Any]]:
    """Per kill (``at_s`` into the pass that began at ``started``): each session's
    ``worker_crashed`` event and the first final of the segment it resumes from."""
    rows = []
    for k, kill in enumerate(kills):
        begin = started + kill["at_s"]
        end = started + kills[k + 1]["at_s"] if k + 1 < len(kills) else math.inf
        detected, resumed = {}, {}
        for trace in traces:
            window = [(t, e) for t, e in trace.events if begin <= t < end]
            crash = next(((t, e) for t, e in window if e.get("code") == "worker_crashed"), None)
            if crash is None:
                continue
            detected[trace.index] = round(crash[0] - begin, 3)
            resume = crash[1].get("resume_segment_id", 0)
            final = next(
                (
                    t
                    for t, e in window
                    if t >= crash[0]
                    and e["type"] == "transcript.final"
                    and e["segment_id"] >= resume
                ),
                None,
            )
            if final is not None:
                resumed[trace.index] = round(final - begin, 3)
        rows.append({**kill, "detected_s": detected, "first_final_s": resumed})
    return rows


def read_server_log(path: Path) -> dict[str, Any]:
    """Warnings and errors of the server log by event, and the sessions' recovery times."""
    counts: dict[str, int] = {}
    recovered: list[float] = []
    for line in path.read_text(errors="replace").splitlines():
        if not line.startswith("{"):
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("event") == "session_recovered" and "seconds" in entry:
            recovered.append(float(entry["seconds"]))
        if entry.get("level") in ("warning", "error", "critical"):
            key = f"{entry['level']}:{entry.get('event')}"
            counts[key] = counts.get(key, 0) + 1
    return {"by_event": counts, "session_recovered_s": recovered}


def failures_of(result: dict[str, Any], max_wer: float) -> list[str]:
    """Every broken invariant of a run, one line each."""
    bound = result["wer_bound"]
    lines = []
    for s in result["baseline"]:
        lines += session_failures(s, math.inf, "no-fault")
    for s in result["sessions"]:
        lines += session_failures(s, bound, "chaos")
    if not result["kills"]:
        lines.append("no worker was killed: the sessions ended before the first kill")
    lines += [f"kill at {k['at_s']:.1f} s: {k['error']}" for k in result["kills"] if k["error"]]
    for b in result["batches"]:
        at = f"batch at {b['at_s']:.1f} s"
        if b["status"] == 503 and not b["retry_after"]:
            lines.append(f"{at}: 503 without Retry-After")
        elif b["status"] not in (200, 503):
            lines.append(f"{at}: status {b['status']} {b['code'] or ''} {b['error'] or ''}")
        elif b["wer"] is not None and b["wer"] > max_wer:
            lines.append(f"{at}: WER {b['wer']:.3f}")
    return lines


def _spread(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{percentile(values, 0.5):.2f} / {max(values):.2f}"


def _mb(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def print_report(result: dict[str, Any]) -> None:
    cfg = result["config"]
    print(
        f"\nChaos: {cfg['sessions']} sessions x {cfg['loops']} loops of {cfg['clip']} "
        f"({cfg['loops'] * cfg['utterances_per_loop']} utterances each) at {cfg['speed']:g}x, "
        f"{cfg['model']}, worker SIGKILLed every {cfg['kill_interval']:g} s"
        f"{' (twice: its successor too once ready)' if cfg['double_kill'] else ''}, "
        f"{cfg['quiet_sessions']} quiet session(s), batch every {cfg['batch_interval']:g} s; "
        f"{result['wall_s']:.0f} s wall\n"
    )
    print(
        "| session | finals / utterances | missing | twice | dup ids | ids increasing "
        "| repeated | misplaced | crash events | WER | closed by server |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for s in result["sessions"]:
        wer_cell = "-" if s["wer"] is None else f"{s['wer']:.3f}"
        name = f"{s['session']}{' (quiet)' if s['quiet'] else ''}"
        print(
            f"| {name} | {s['finals']} / {s['utterances']} | {len(s['missing'])} "
            f"| {len(s['matched_twice'])} | {len(s['duplicate_ids'])} | {s['ids_increasing']} "
            f"| {len(s['repeated_text'])} | {len(s['misplaced'])} | {s['worker_crashed']} "
            f"| {wer_cell} | {s['closed_by_server'] or 'no'} |"
        )
    baseline = result["baseline_wer"]
    shown = ", ".join(f"{w:.3f}" for w in baseline) if baseline else "not run"
    print(f"\nWER bound {result['wer_bound']:.3f} (no-fault pass: {shown})\n")
    print(
        "| kill at (s) | pid -> new pid | worker ready (s) | crash event p50 / max (s) "
        "| resumed final p50 / max (s) | sessions hit |"
    )
    print("|---|---|---|---|---|---|")
    for k in result["kills"]:
        ready = "-" if k["worker_back_s"] is None else f"{k['worker_back_s']:.2f}"
        at = f"{k['at_s']:.1f}{' (again)' if k['follow_up'] else ''}"
        print(
            f"| {at} | {k['pid']} -> {k['new_pid']} | {ready} "
            f"| {_spread(list(k['detected_s'].values()))} "
            f"| {_spread(list(k['first_final_s'].values()))} | {len(k['detected_s'])} |"
        )
    statuses: dict[str, int] = {}
    for b in result["batches"]:
        key = str(b["status"]) + (f" {b['code']}" if b["code"] else "")
        statuses[key] = statuses.get(key, 0) + 1
    recovered = result["server_log"]["session_recovered_s"]
    print(
        f"\nbatch answers: {statuses or 'none'}; server-side session recoveries: "
        f"{len(recovered)} (p50 / max {_spread(recovered)} s)"
    )
    print(f"server log warnings/errors: {result['server_log']['by_event'] or 'none'}")
    growth = [result["server_rss_growth_mb"], result["worker_rss_growth_mb"]]
    print(
        "RSS growth (last third - first third of the samples): server "
        + ", worker ".join("n/a" if g is None else f"{g:+.1f} MB" for g in growth)
    )
    print("\n| wall (s) | server RSS (MB) | worker RSS (MB) | worker pid | load |")
    print("|---|---|---|---|---|")
    step = max(1, len(result["samples"]) // 12)
    for sample in result["samples"][::step]:
        print(
            f"| {sample['wall_s']:.0f} | {_mb(sample['server_mb'])} | {_mb(sample['worker_mb'])} "
            f"| {sample['worker_pid']} | {sample['load1']} |"
        )
    failures = result["failures"]
    print(f"\n{'FAILED' if failures else 'PASSED'}: {len(failures)} invariant(s) broken")
    for line in failures:
        print(f"- {line}")
