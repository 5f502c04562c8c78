"""onnxruntime's telemetry, switched off in every Theo process that loads onnxruntime.

A local server has no business queuing usage events; onnxruntime enables them by default
on some platforms. Called by the API process before it builds the VAD session and by every
worker before it loads its engine.
"""

from __future__ import annotations

import importlib


def disable_onnx_telemetry() -> bool:
    """Turn off onnxruntime's telemetry events for this process.

    Returns:
        Whether onnxruntime is installed (and its telemetry now off).
    """
    try:
        onnxruntime = importlib.import_module("onnxruntime")
    except ImportError:
        return False
    onnxruntime.disable_telemetry_events()
    return True
