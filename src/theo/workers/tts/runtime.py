"""Where ONNX engines run: the device a manifest asks for, checked against onnxruntime."""

from __future__ import annotations

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
