"""A process's resident memory around one action: the peak and what stays, over its RSS before.

Shared by the end-to-end memory tests and ``benchmarks/decode_memory.py``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SAMPLE_INTERVAL_S = 0.005


def status_kb(pid: int | str, field: str) -> int:
    """A ``/proc/<pid>/status`` field in KiB (``VmRSS``, ``VmHWM``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/{pid}/status")


@dataclass
class Growth:
    """Resident memory of one process around one action, in MiB over its RSS before."""

    peak_mib: float
    retained_mib: float
    exact: bool
    """Whether the peak is the kernel's high-water mark (else the highest 5 ms sample)."""


def measure_growth(pid: int | str, action: Callable[[], Any]) -> tuple[Any, Growth]:
    """Run ``action``; return its result and the process's peak and retained RSS growth."""
    baseline = status_kb(pid, "VmRSS")
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")  # VmHWM := VmRSS
        exact = True
    except OSError:
        exact = False
    sampled = baseline
    done = threading.Event()

    def sample() -> None:
        nonlocal sampled
        while not done.is_set():
            sampled = max(sampled, status_kb(pid, "VmRSS"))
            done.wait(SAMPLE_INTERVAL_S)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        result = action()
    finally:
        done.set()
        sampler.join()
    peak = max(sampled, status_kb(pid, "VmHWM")) if exact else sampled
    after = status_kb(pid, "VmRSS")
    return result, Growth((peak - baseline) / 1024, (after - baseline) / 1024, exact)
