"""Where ONNX engines run: the device a manifest asks for, checked against onnxruntime."""

from __future__ import annotations

from typing import Any

_CUDA = "CUDAExecutionProvider"


def onnx_device(requested: str) -> str:
    """``cpu`` or ``cuda`` for a manifest's ``device`` (``auto`` picks CUDA when available).

    Raises:
        RuntimeError: CUDA was asked for but this onnxruntime build cannot use it.
    """
    if requested == "cpu":
        return "cpu"
    import onnxruntime  # type: ignore[import-untyped]  # noqa: PLC0415 - ships no types; lazy

    has_cuda = _CUDA in onnxruntime.get_available_providers()
    if requested == "cuda" and not has_cuda:
        raise RuntimeError("device 'cuda' requested but onnxruntime has no CUDA provider")
    return "cuda" if has_cuda else "cpu"


def onnx_providers(device: str) -> list[str]:
    """The onnxruntime execution providers for a resolved device."""
    return [_CUDA, "CPUExecutionProvider"] if device == "cuda" else ["CPUExecutionProvider"]


def onnx_session_options(cpu_threads: int = 0) -> Any:
    """Session options for a worker that shares the machine's cores with other processes.

    onnxruntime's intra-op threads spin for about 40 ms after every run by default, which
    keeps a core busy between the pieces of a text and starves the API process and the
    other workers of it (measured: a 28 ms Piper piece took 34-40 ms in a worker next to
    a spinning engine). ``session.force_spinning_stop`` keeps the spinning inside a run,
    where it speeds up the parallel sections, and stops it as soon as the run returns.

    Args:
        cpu_threads: intra-op threads; 0 lets onnxruntime use one per physical core.
    """
    import onnxruntime  # noqa: PLC0415 - lazy: the API process never imports it

    options = onnxruntime.SessionOptions()
    options.add_session_config_entry("session.force_spinning_stop", "1")
    if cpu_threads:
        options.intra_op_num_threads = cpu_threads
    return options
