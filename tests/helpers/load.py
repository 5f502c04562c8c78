"""A machine whose cores are all taken by another job, for tests of behaviour under load."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator

# Busy loops, one per core.
_BURN = "while True:\n    pass\n"


@contextlib.contextmanager
def cores_loaded() -> Iterator[None]:
    """Run one CPU-bound process per core for the duration of the block."""
    burners = [subprocess.Popen([sys.executable, "-c", _BURN]) for _ in range(os.cpu_count() or 2)]
    try:
        yield
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()
