"""What the benchmark scripts share beyond the tests' harness: progress, percentiles, models.

Imported as ``harness`` by scripts run from the repository root
(``.venv/bin/python benchmarks/NAME.py``), whose directory is first on ``sys.path``.
Importing it puts the repository root on ``sys.path`` too, so the scripts use the tests'
`theo serve` harness (``tests.helpers.server``) and word error rate (``tests.helpers.wer``).
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.helpers.server import theo_env, theo_executable


def log(message: str) -> None:
    """Progress to stderr, so the result tables on stdout stay clean."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def percentile(values: list[float], fraction: float) -> float:
    """Linear-interpolated percentile (``fraction`` in [0, 1]) of a non-empty list."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    position = fraction * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def ensure_model(home: Path, model: str, log_path: Path) -> Path:
    """Return ``<home>/models/<model>``, running ``theo pull`` first if it is not there.

    The pull's output is appended to ``log_path``, the log the server writes to next.
    """
    model_dir = home / "models" / model
    if (model_dir / "theo.yaml").exists():
        log(f"using installed model at {model_dir}")
        return model_dir
    log(f"theo pull {model} (THEO_HOME={home}) ...")
    started = time.perf_counter()
    with log_path.open("ab") as log_file:
        result = subprocess.run(
            [theo_executable(), "pull", model],
            env=theo_env(home),
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            check=False,
        )
    if result.returncode != 0 or not (model_dir / "theo.yaml").exists():
        raise RuntimeError(f"theo pull {model} failed (exit {result.returncode}); see the log")
    log(f"pulled in {time.perf_counter() - started:.1f} s")
    return model_dir


def model_links(
    theo_home: Path | None, workdir: Path, models: Iterable[str], log_path: Path
) -> tuple[Path, Path]:
    """The ``THEO_HOME`` to use (``theo_home``, or a fresh one in ``workdir``) and a models
    directory in ``workdir`` holding a link to each of ``models``, pulled where missing:
    a server started with it serves only those models."""
    home = theo_home.expanduser().resolve() if theo_home else workdir / "home"
    home.mkdir(parents=True, exist_ok=True)
    models_dir = workdir / "models"
    models_dir.mkdir()
    for model in models:
        (models_dir / model).symlink_to(
            ensure_model(home, model, log_path), target_is_directory=True
        )
    return home, models_dir
