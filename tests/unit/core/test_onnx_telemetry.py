"""onnxruntime's telemetry is switched off wherever Theo loads onnxruntime."""

from __future__ import annotations

import sys
import types

import pytest

from theo.onnx_telemetry import disable_onnx_telemetry


def test_telemetry_is_disabled_through_onnxruntime(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    fake = types.ModuleType("onnxruntime")
    fake.disable_telemetry_events = lambda: calls.append("disabled")  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "onnxruntime", fake)
    assert disable_onnx_telemetry() is True
    assert calls == ["disabled"]


def test_without_onnxruntime_nothing_happens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes the import fail
    assert disable_onnx_telemetry() is False
