"""The fake-engine tier: a real `theo serve` whose models run the scripted fake engine.

``tests/fake_engines`` holds a plug-in package (``theo_fake_engines``) and the
``.dist-info`` that registers it as the ``fake`` engine; it is put on the server's
``PYTHONPATH`` only, so the fake is never installed and never seen by a normal server.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.helpers.server import REPO_ROOT, RunningServer, serving, start_server
from theo.manifest import ModelManifest

FAKE_ENGINES = REPO_ROOT / "tests" / "fake_engines"
FAKE_STT = "fake-stt"
FAKE_TTS = "fake-tts"


def install_fake_stt(home: Path, name: str = FAKE_STT, **engine_config: Any) -> Path:
    """Write a ``fake`` STT model into ``home``'s models directory; returns its directory."""
    manifest = ModelManifest.from_dict(
        {
            "name": name,
            "type": "stt",
            "engine": "fake",
            "capabilities": {"languages": ["en"], "translation": False},
            "engine_config": engine_config,
            # The built-in rules answer at once; NeMo's grammar build would take seconds.
            "postprocessing": {"itn_backend": "builtin"},
        }
    )
    model_dir = home / "models" / name
    model_dir.mkdir(parents=True)
    manifest.dump(model_dir)
    return model_dir


def install_fake_tts(home: Path, name: str = FAKE_TTS, **engine_config: Any) -> Path:
    """Write a ``fake`` TTS model into ``home``'s models directory; returns its directory."""
    manifest = ModelManifest.from_dict(
        {
            "name": name,
            "type": "tts",
            "engine": "fake",
            "capabilities": {"languages": ["en"], "word_timestamps": False},
            "engine_config": engine_config,
        }
    )
    model_dir = home / "models" / name
    model_dir.mkdir(parents=True)
    manifest.dump(model_dir)
    return model_dir


def fake_engine_env(extra_env: dict[str, str] | None = None) -> dict[str, str]:
    """``extra_env`` plus a ``PYTHONPATH`` on which the server finds the fake engines."""
    paths = [str(FAKE_ENGINES), os.environ.get("PYTHONPATH", "")]
    return {"PYTHONPATH": os.pathsep.join(p for p in paths if p), **(extra_env or {})}


@contextmanager
def serving_fake(
    home: Path,
    log_path: Path,
    extra_env: dict[str, str] | None = None,
    extra_args: list[str] | None = None,
) -> Iterator[RunningServer]:
    """`theo serve` on ``home`` with the fake engines, ready inside the block, then stopped."""
    env = fake_engine_env(extra_env)
    with serving(home, log_path, extra_env=env, ready_timeout=60, extra_args=extra_args) as server:
        yield server


def start_fake_server(
    home: Path, log_path: Path, extra_env: dict[str, str] | None = None
) -> RunningServer:
    """`theo serve` on ``home`` with the fake engines importable, ready to answer."""
    return start_server(home, log_path, extra_env=fake_engine_env(extra_env), ready_timeout=60)
