"""The one settings object: every ``THEO_*`` environment variable lives here.

Nested groups use ``__`` as the delimiter (``THEO_WORKER__STARTUP_TIMEOUT_S=120``).
Settings are built once at the edge (CLI or app factory) and passed in explicitly.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_home() -> Path:
    return Path.home() / ".theo"


class WorkerSettings(BaseModel):
    """How engine worker subprocesses are started, probed and restarted."""

    replicas: int = Field(default=1, ge=1, le=8)
    """Worker processes per served model (``THEO_WORKER__REPLICAS``, 1-8). Each loads its
    own copy of the model; requests go to the least-loaded ready one, so a model keeps
    serving while one of its workers restarts. Each replica costs the model's memory."""
    startup_timeout_s: float = 300.0
    """Longest time a worker may take to load its model and answer READY."""
    health_interval_s: float = 5.0
    """Interval between liveness probes of a READY worker."""
    health_timeout_s: float = 3.0
    """A worker that does not answer a probe within this time counts as failed."""
    max_restarts: int = 3
    """Automatic restarts allowed within ``restart_window_s`` before a worker stays CRASHED."""
    restart_window_s: float = 60.0
    """Sliding window over which restarts are counted."""
    restart_backoff_s: float = 0.5
    """First delay before a restart; doubled on each further restart in the window."""
    stop_grace_s: float = 5.0
    """Time between SIGTERM and SIGKILL when stopping a worker."""


class SchedulerSettings(BaseModel):
    """How a worker shares its engine between realtime and batch work."""

    batch_max_wait_s: float = Field(default=6.0, ge=0.0, le=60.0)
    """Longest one engine call of a batch request waits while realtime work (partial
    passes, finals) is pending (``THEO_SCHEDULER__BATCH_MAX_WAIT_S``): realtime work goes
    first, and this aging keeps a busy server making progress on batch requests."""
    engine_lanes: int = Field(default=0, ge=0, le=16)
    """Engine calls an STT worker runs at once (``THEO_SCHEDULER__ENGINE_LANES``), where
    the model's manifest does not say: each lane is a CTranslate2 replica sharing one
    copy of the weights, each running with all of the worker's cores. A final then
    starts on a free lane instead of waiting for a partial pass in flight, and concurrent
    sessions decode side by side. 0 (default): 2 lanes on a CPU with at least 2 cores
    (1 on one core), 1 on CUDA; 1: one call at a time with every core in it, as before.
    On 2 AVX2 CPU cores a lone tiny.en final takes 271 ms with both threads and 380 ms with
    one, and two finals side by side 265 ms each (see benchmarks/README.md)."""
    max_pass_batch: int = Field(default=1, ge=1, le=32)
    """The most partial passes of concurrent streams one engine call decodes together
    (``THEO_SCHEDULER__MAX_PASS_BATCH``; 1, the default, turns batching off). Passes batch
    only when they queue behind other work, so an idle worker adds no wait. Off by
    default: on 2 CPU cores it delivered more partials but made finals later (see
    benchmarks/README.md)."""


class SessionSettings(BaseModel):
    """Server-side limits of realtime sessions (clients cannot change these)."""

    ring_buffer_s: float = Field(default=60.0, ge=2.0, le=600.0)
    """Speech audio each session keeps until its final is in (for crash recovery); a
    segment is force-committed when uncommitted audio reaches 90% of it (at most the ring
    minus 6 s, so the speech heard while its final decodes still fits)."""
    max_backlog_s: float = Field(default=10.0, gt=0.0)
    """Audio a client may send ahead of real time before frames are dropped."""
    rate_limit_after_s: float = Field(default=2.0, gt=0.0)
    """Audio ahead of real time after which the client gets ``session.rate_limit``."""
    recovery_timeout_s: float = Field(default=60.0, gt=0.0)
    """Longest a session waits for its crashed worker to come back before it fails."""
    lag_warning_s: float = Field(default=2.0, gt=0.0, le=60.0)
    """A segment whose final is this overdue (since the VAD or a commit ended it) tells the
    client ``session.lagging``: the server is falling behind real time."""
    max_sessions: int = Field(default=64, ge=1)
    """Realtime sessions served at once; one more is refused with close code 1013."""
    send_timeout_s: float = Field(default=10.0, gt=0.0, le=600.0)
    """Longest one message to a WebSocket client may wait to be sent; a client that reads
    nothing this long is cut off (close 1008, ``slow_consumer``), so what waits for it
    stays bounded."""


class TelephonySettings(BaseModel):
    """Phone calls in over RTP and Asterisk AudioSocket (both off unless a port is set)."""

    rtp_port: int | None = Field(default=None, ge=0, le=65_535)
    """UDP port of the RTP listener (``THEO_TELEPHONY__RTP_PORT`` or ``--rtp-port``); unset:
    off. Each stream (source address + SSRC) becomes a call."""
    audiosocket_port: int | None = Field(default=None, ge=0, le=65_535)
    """TCP port of the Asterisk AudioSocket server (``THEO_TELEPHONY__AUDIOSOCKET_PORT`` or
    ``--audiosocket-port``); unset: off."""
    model: str = ""
    """STT model of calls; empty: the first ready model that can stream."""
    language: str = ""
    """Language of calls (ISO 639-1); empty: detected by the engine."""
    hot_words: str = ""
    """Comma-separated domain words biased and corrected in calls' transcripts."""
    idle_timeout_ms: int = Field(default=5_000, ge=100, le=3_600_000)
    """A call with no packet (RTP) or no frame (AudioSocket) this long ends."""
    max_calls: int = Field(default=16, ge=1, le=1_024)
    """Calls served at once (both transports); new streams beyond it are refused."""
    jitter_buffer_ms: int = Field(default=60, ge=0, le=1_000)
    """How long an RTP call waits for a missing packet before concealing it with silence."""
    l16_payload_type: int = Field(default=118, ge=96, le=127)
    """Dynamic RTP payload type of 16 kHz linear PCM (Asterisk ExternalMedia ``slin16``)."""
    dtmf_payload_type: int = Field(default=101, ge=96, le=127)
    """Dynamic RTP payload type of RFC 4733 telephone events (DTMF)."""
    barge_in: bool = False
    """Calls keep listening while they speak, with the echo guard, and a caller speaking
    over a reply stops it; off: mute-on-speak."""


class Settings(BaseSettings):
    """Runtime configuration for the Theo server and CLI."""

    model_config = SettingsConfigDict(env_prefix="THEO_", env_nested_delimiter="__", extra="ignore")

    home: Path = Field(default_factory=_default_home)
    """Theo's home directory (``THEO_HOME``); models live in ``<home>/models``."""
    models_dir: Path | None = None
    """Override for the models directory (``THEO_MODELS_DIR``)."""
    host: str = "127.0.0.1"
    """Address ``theo serve`` binds and the CLI clients talk to."""
    port: int = 8000
    """Port ``theo serve`` binds and the CLI clients talk to."""
    download_cache_dir: Path | None = None
    """Where ``theo pull`` keeps downloaded packages for reuse (``THEO_DOWNLOAD_CACHE_DIR``);
    defaults to ``<home>/cache``."""
    itn_cache_dir: Path | None = None
    """Where compiled NeMo ITN grammars are kept (``THEO_ITN_CACHE_DIR``); defaults to
    ``<home>/cache/itn``. Grammars are built once, at server start-up, never on a request."""
    catalog_path: Path | None = None
    """Model catalog read by ``theo pull`` (``THEO_CATALOG_PATH``); defaults to the packaged
    ``registry/catalog.yaml``. Useful for private mirrors and tests."""
    server_url: str | None = None
    """Full base URL the CLI clients use (``THEO_SERVER_URL``); defaults to host and port."""
    log_format: Literal["console", "json"] = "console"
    """Log renderer: human-readable console lines or one JSON object per line."""
    log_level: str = "INFO"
    """Minimum log level."""
    max_file_size_mb: float = 25.0
    """Largest accepted upload for the audio endpoints, in MiB; bigger bodies get 413."""
    retry_after_s: int = 5
    """Value of the ``Retry-After`` header on 503 answers."""
    request_timeout_s: float = 600.0
    """Longest a single batch inference may run in a worker."""
    max_audio_duration_s: float = Field(default=7200.0, gt=0.0)
    """Longest audio accepted in one upload, in seconds (``THEO_MAX_AUDIO_DURATION_S``);
    decoding stops as soon as it is exceeded and the request gets 413."""
    min_sample_rate: int = Field(default=8_000, ge=1)
    """Lowest sample rate an upload may declare (``THEO_MIN_SAMPLE_RATE``), in Hz."""
    max_sample_rate: int = Field(default=192_000, ge=1)
    """Highest sample rate an upload may declare (``THEO_MAX_SAMPLE_RATE``), in Hz."""
    shutdown_timeout_s: int = Field(default=10, ge=0)
    """Longest ``theo serve`` waits, after SIGTERM or Ctrl+C, for open requests and realtime
    sessions to finish before it cancels them (``THEO_SHUTDOWN_TIMEOUT_S``, whole seconds).
    Workers are then stopped within ``worker.stop_grace_s``; a shutdown that still hangs
    ends the process a few seconds after both."""
    body_read_timeout_s: float = Field(default=30.0, gt=0.0)
    """Longest wait for the next piece of a request body (``THEO_BODY_READ_TIMEOUT_S``);
    a client that stalls mid-upload longer gets 408 and its connection is closed."""
    api_keys: str = ""
    """Comma-separated API keys (``THEO_API_KEYS``). When set (or ``api_keys_file`` is),
    every route but ``/health`` requires ``Authorization: Bearer <key>``."""
    api_keys_file: Path | None = None
    """A file with one API key per line (``THEO_API_KEYS_FILE``); blank lines and ``#``
    comments are ignored. Keys from both sources are accepted."""
    api_key: str = ""
    """The key the ``theo`` client commands send as ``Authorization: Bearer``
    (``THEO_API_KEY``)."""
    metrics_public: bool = False
    """Serve ``/metrics`` without an API key (``THEO_METRICS_PUBLIC``)."""
    allowed_origins: str = ""
    """Comma-separated browser origins allowed to call the API and open WebSockets
    (``THEO_ALLOWED_ORIGINS``, e.g. ``http://localhost:3000``; ``*`` allows any). By default
    cross-origin browser requests are refused."""
    allowed_hosts: str = ""
    """Comma-separated extra ``Host`` header names the server answers to
    (``THEO_ALLOWED_HOSTS``; ``*`` allows any). Localhost names and the bind address are
    always allowed; other names are refused to defeat DNS rebinding."""
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    """Worker supervision settings."""
    scheduler: SchedulerSettings = Field(default_factory=SchedulerSettings)
    """Realtime-before-batch scheduling inside the workers."""
    session: SessionSettings = Field(default_factory=SessionSettings)
    """Realtime session limits: ring buffer, backpressure, crash recovery."""
    telephony: TelephonySettings = Field(default_factory=TelephonySettings)
    """Phone call inputs: RTP and AudioSocket ports, model, limits."""

    @property
    def resolved_models_dir(self) -> Path:
        """The directory scanned for installed models."""
        return self.models_dir if self.models_dir is not None else self.home / "models"

    @property
    def resolved_download_cache_dir(self) -> Path:
        """The directory where downloads are cached between pulls."""
        if self.download_cache_dir is not None:
            return self.download_cache_dir
        return self.home / "cache"

    @property
    def resolved_itn_cache_dir(self) -> Path:
        """The directory holding compiled ITN grammars."""
        return self.itn_cache_dir if self.itn_cache_dir is not None else self.home / "cache" / "itn"

    @property
    def base_url(self) -> str:
        """The URL CLI clients use to reach the server."""
        if self.server_url:
            return self.server_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        return f"http://{host}:{self.port}"

    @property
    def max_file_size_bytes(self) -> int:
        """Upload limit in bytes."""
        return int(self.max_file_size_mb * 1024 * 1024)


ENV_PREFIX = "THEO_"
_NON_SETTING_VARIABLES = frozenset({"THEO_DEFAULT_MODELS"})
"""``THEO_*`` variables read by the project's scripts rather than by the settings object."""


def setting_variable_names() -> list[str]:
    """Every ``THEO_*`` environment variable the settings object reads."""
    names: list[str] = []
    for name, field in Settings.model_fields.items():
        names.append(f"{ENV_PREFIX}{name.upper()}")
        group = field.annotation
        if isinstance(group, type) and issubclass(group, BaseModel):
            names.extend(f"{ENV_PREFIX}{name.upper()}__{sub.upper()}" for sub in group.model_fields)
    return names


def unknown_setting_variables(environ: Mapping[str, str]) -> dict[str, str | None]:
    """``THEO_*`` variables in ``environ`` that no setting reads, each with a likely meant name.

    A misspelled variable would otherwise be ignored without a word, leaving the default in
    force; ``theo serve`` logs these at start-up.
    """
    known = setting_variable_names()
    unknown: dict[str, str | None] = {}
    for variable in environ:
        upper = variable.upper()
        if not upper.startswith(ENV_PREFIX) or upper in _NON_SETTING_VARIABLES:
            continue
        if upper not in known:
            close = difflib.get_close_matches(upper, known, n=1, cutoff=0.75)
            unknown[variable] = close[0] if close else None
    return unknown
