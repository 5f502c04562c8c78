from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from theo.errors import (
    FileTooLargeError,
    InferenceError,
    ModelNotFoundError,
    ModelUnavailableError,
    WorkerCrashError,
)
from theo.server.errors import install_error_handlers


def _app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app, retry_after_s=7)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internal detail")

    @app.get("/unavailable")
    async def unavailable() -> None:
        raise ModelUnavailableError("loading")

    @app.get("/crashed")
    async def crashed() -> None:
        raise WorkerCrashError("worker died")

    @app.get("/missing")
    async def missing() -> None:
        raise ModelNotFoundError("x", ["a", "b"])

    @app.get("/large")
    async def large() -> None:
        raise FileTooLargeError("too big")

    @app.get("/engine")
    async def engine() -> None:
        raise InferenceError("engine broke")

    return app


def test_unexpected_errors_are_500_without_details() -> None:
    client = TestClient(_app(), raise_server_exceptions=False)
    response = client.get("/boom")
    assert response.status_code == 500
    assert response.json() == {
        "error": {
            "message": "Internal server error.",
            "type": "server_error",
            "param": None,
            "code": "internal_error",
        }
    }
    assert "secret" not in response.text and "Traceback" not in response.text


def test_domain_errors_map_to_status_codes() -> None:
    client = TestClient(_app())
    unavailable = client.get("/unavailable")
    assert unavailable.status_code == 503 and unavailable.headers["Retry-After"] == "7"
    crashed = client.get("/crashed")
    assert crashed.status_code == 503 and crashed.json()["error"]["code"] == "worker_crashed"
    missing = client.get("/missing")
    assert (
        missing.status_code == 404
        and "Installed models: a, b" in missing.json()["error"]["message"]
    )
    large = client.get("/large")
    assert large.status_code == 413 and large.json()["error"]["param"] == "file"
    assert client.get("/engine").status_code == 500
