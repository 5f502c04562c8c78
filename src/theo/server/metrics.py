"""Every metric the server exposes at ``GET /metrics``, behind named helpers.

Each app owns its own registry, so tests and multiple apps in one process never collide.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Enum,
    Gauge,
    Histogram,
    disable_created_metrics,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

from theo.types import WorkerState
from theo.workers.handle import WorkerHandle

# The *_created series double the exposition size and nobody graphs them.
disable_created_metrics()

_STAGE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
_CONFIDENCE_WINDOW = 100


class _SchedulerCollector(Collector):
    """The STT workers' scheduling figures, as of each worker's last health probe.

    Totals count since the worker process started (a restart resets them, which
    Prometheus reads as a counter reset), labelled by worker.
    """

    def __init__(self, handles: Callable[[], Iterable[WorkerHandle]]) -> None:
        self._handles = handles

    def collect(self) -> Iterator[Metric]:
        labels = ["model", "worker"]
        depth = GaugeMetricFamily(
            "theo_scheduler_queue_depth",
            "Work waiting for or holding a worker's engine, by priority.",
            labels=[*labels, "priority"],
        )
        waited = CounterMetricFamily(
            "theo_scheduler_batch_waits",
            "Batch engine calls that waited for realtime work.",
            labels=labels,
        )
        wait_s = CounterMetricFamily(
            "theo_scheduler_batch_wait_seconds",
            "Time batch engine calls waited for realtime work.",
            labels=labels,
        )
        inversions = CounterMetricFamily(
            "theo_scheduler_priority_inversions",
            "Batch engine calls that ran while realtime work was pending, after waiting "
            "THEO_SCHEDULER__BATCH_MAX_WAIT_S (aging).",
            labels=labels,
        )
        cancels = CounterMetricFamily(
            "theo_cancel_stops",
            "Cancelled batch decodes that have stopped.",
            labels=labels,
        )
        cancel_s = CounterMetricFamily(
            "theo_cancel_latency_seconds",
            "Time from cancelling batch decodes to their engine stopping (divide by "
            "theo_cancel_stops_total for the mean).",
            labels=labels,
        )
        pass_calls = CounterMetricFamily(
            "theo_batch_calls",
            "Engine calls made for streams' partial passes.",
            labels=labels,
        )
        pass_decodes = CounterMetricFamily(
            "theo_batch_decodes",
            "Partial passes decoded by those calls (divide by theo_batch_calls_total for "
            "the mean batch size).",
            labels=labels,
        )
        batch_size = GaugeMetricFamily(
            "theo_batch_size",
            "Partial passes per engine call: mean since the worker started.",
            labels=labels,
        )
        largest = GaugeMetricFamily(
            "theo_batch_size_max",
            "The most partial passes one engine call decoded.",
            labels=labels,
        )
        lanes = GaugeMetricFamily(
            "theo_scheduler_engine_lanes",
            "Engine calls the worker runs at once (THEO_SCHEDULER__ENGINE_LANES).",
            labels=labels,
        )
        most_running = GaugeMetricFamily(
            "theo_scheduler_realtime_running_max",
            "The most realtime decodes (partial passes, finals) that ran at once.",
            labels=labels,
        )
        for handle in self._handles():
            stats = handle.scheduler
            if stats is None:
                continue
            ids = [handle.model_name, handle.worker_id]
            depth.add_metric([*ids, "realtime"], stats.realtime_queued)
            depth.add_metric([*ids, "batch"], stats.batch_queued)
            waited.add_metric(ids, stats.batch_calls_waited)
            wait_s.add_metric(ids, stats.batch_wait_seconds)
            inversions.add_metric(ids, stats.batch_calls_aged)
            cancels.add_metric(ids, stats.cancels)
            cancel_s.add_metric(ids, stats.cancel_latency_seconds)
            pass_calls.add_metric(ids, stats.pass_calls)
            pass_decodes.add_metric(ids, stats.pass_decodes)
            batch_size.add_metric(ids, stats.pass_decodes / max(stats.pass_calls, 1))
            largest.add_metric(ids, stats.largest_pass_batch)
            lanes.add_metric(ids, stats.engine_lanes)
            most_running.add_metric(ids, stats.most_realtime_running)
        yield from (depth, waited, wait_s, inversions, cancels, cancel_s)
        yield from (pass_calls, pass_decodes, batch_size, largest, lanes, most_running)


class Metrics:
    """Prometheus collectors for requests, errors and workers."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._requests = Counter(
            "theo_requests_total",
            "HTTP requests served, by endpoint, method and status code.",
            ["endpoint", "method", "status"],
            registry=self.registry,
        )
        self._duration = Histogram(
            "theo_request_duration_seconds",
            "Time to serve an HTTP request, by endpoint.",
            ["endpoint"],
            buckets=_DURATION_BUCKETS,
            registry=self.registry,
        )
        self._errors = Counter(
            "theo_errors_total",
            "Requests answered with an error, by endpoint and error code.",
            ["endpoint", "code"],
            registry=self.registry,
        )
        self._worker_state = Enum(
            "theo_worker_state",
            "Current state of each worker subprocess.",
            ["worker_id", "model"],
            states=[s.value for s in WorkerState],
            registry=self.registry,
        )
        self._preprocessing = Histogram(
            "theo_preprocessing_duration_seconds",
            "Time to decode and preprocess audio before the engine.",
            ["mode"],
            buckets=_STAGE_BUCKETS,
            registry=self.registry,
        )
        self._postprocessing = Histogram(
            "theo_postprocessing_duration_seconds",
            "Time to post-process transcripts (ITN, entities, hot words).",
            ["mode"],
            buckets=_STAGE_BUCKETS,
            registry=self.registry,
        )
        self._stt_ttfb = Histogram(
            "theo_stt_ttfb_seconds",
            "Realtime: time from a segment's speech start to its first partial transcript.",
            buckets=(*_STAGE_BUCKETS, 10.0),
            registry=self.registry,
        )
        self._stt_final_delay = Histogram(
            "theo_stt_final_delay_seconds",
            "Realtime: time from the end of a segment (VAD or commit) to its final transcript.",
            buckets=(*_STAGE_BUCKETS, 10.0),
            registry=self.registry,
        )
        self._stt_sessions = Gauge(
            "theo_stt_active_sessions",
            "Realtime transcription sessions currently open.",
            registry=self.registry,
        )
        self._stt_vad_events = Counter(
            "theo_stt_vad_events_total",
            "Realtime VAD events, by kind.",
            ["event"],
            registry=self.registry,
        )
        self._worker_restarts = Gauge(
            "theo_worker_restarts",
            "Automatic restarts of each worker since the server started.",
            ["worker_id", "model"],
            registry=self.registry,
        )
        self._stt_session_duration = Histogram(
            "theo_stt_session_duration_seconds",
            "Realtime: how long sessions lasted, from connection to close.",
            buckets=(1.0, 5.0, 15.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0),
            registry=self.registry,
        )
        self._stt_force_commits = Counter(
            "theo_stt_segments_force_committed_total",
            "Realtime segments cut before the VAD ended them: reason ring_buffer (the "
            "session's ring buffer reached 90%) or client (input_audio_buffer.commit).",
            ["reason"],
            registry=self.registry,
        )
        self._stt_dictation_extended = Counter(
            "theo_stt_dictation_extended_endpoints_total",
            "Realtime segments whose end waited dictation_silence_ms because their words "
            "ended inside a dictated entity (digits, a number word, CPF, an amount).",
            registry=self.registry,
        )
        self._stt_lagging = Counter(
            "theo_stt_sessions_lagging_total",
            "Realtime segments whose final was THEO_SESSION__LAG_WARNING_S overdue: their "
            "session fell behind real time (each told with session.lagging).",
            registry=self.registry,
        )
        self._stt_recoveries = Counter(
            "theo_stt_worker_recoveries_total",
            "Realtime sessions whose worker stream broke, by outcome (recovered or failed).",
            ["outcome"],
            registry=self.registry,
        )
        self._stt_confidence = Gauge(
            "theo_stt_confidence_avg",
            f"Realtime: mean confidence (0-1) of the last {_CONFIDENCE_WINDOW} non-empty "
            "finals, by model.",
            ["model"],
            registry=self.registry,
        )
        self._confidences: dict[str, deque[float]] = {}
        self._tts_ttfb = Histogram(
            "theo_tts_ttfb_seconds",
            "Speech: time from a request's arrival to its first audio bytes, by model.",
            ["model"],
            buckets=(*_STAGE_BUCKETS, 10.0),
            registry=self.registry,
        )
        self._tts_synthesis = Histogram(
            "theo_tts_synthesis_duration_seconds",
            "Speech: time from a request's arrival until the worker sent its last audio, by model.",
            ["model"],
            buckets=_DURATION_BUCKETS,
            registry=self.registry,
        )
        self._tts_requests = Counter(
            "theo_tts_requests_total",
            "Speech requests by model, response format and outcome "
            "(ok, invalid, error, cancelled).",
            ["model", "response_format", "outcome"],
            registry=self.registry,
        )
        self._session_speech = Counter(
            "theo_tts_session_speech_total",
            "Replies spoken inside realtime sessions (tts.speak), by how they ended "
            "(done, cancelled, barge_in, error).",
            ["reason"],
            registry=self.registry,
        )
        self._v2v = Histogram(
            "theo_v2v_seconds",
            "Voice to voice: the caller's speech end to the first audio of the tts.speak "
            "that followed its final.",
            buckets=(0.1, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0),
            registry=self.registry,
        )
        self._barge_ins = Counter(
            "theo_barge_ins_total",
            "Replies stopped because the caller spoke over them.",
            registry=self.registry,
        )
        self._muted_audio = Counter(
            "theo_muted_audio_seconds_total",
            "Incoming realtime audio replaced by silence while the session's speech played "
            "(mute-on-speak).",
            registry=self.registry,
        )
        self._calls_active = Gauge(
            "theo_calls_active",
            "Phone calls being transcribed, by transport (rtp, audiosocket).",
            ["transport"],
            registry=self.registry,
        )
        self._calls = Counter(
            "theo_calls_total",
            "Phone calls that ended, by transport and reason (hangup, bye, idle_timeout, "
            "no_speech, refused, error, shutdown).",
            ["transport", "reason"],
            registry=self.registry,
        )
        self._rtp_packets = Counter(
            "theo_rtp_packets_total",
            "RTP packets by outcome: received, lost, late, duplicate, reordered, malformed, "
            "unknown_payload.",
            ["outcome"],
            registry=self.registry,
        )
        self._rtp_jitter = Histogram(
            "theo_rtp_jitter_seconds",
            "RFC 3550 interarrival jitter of RTP calls, sampled each second per call.",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64),
            registry=self.registry,
        )

    def preprocessing_done(self, mode: str, seconds: float) -> None:
        """Record time spent decoding and preprocessing audio (``mode``: batch or stream)."""
        self._preprocessing.labels(mode).observe(seconds)

    def postprocessing_done(self, mode: str, seconds: float) -> None:
        """Record time spent post-processing text (``mode``: batch or stream)."""
        self._postprocessing.labels(mode).observe(seconds)

    def session_opened(self) -> None:
        """A realtime session started."""
        self._stt_sessions.inc()

    def session_closed(self) -> None:
        """A realtime session ended."""
        self._stt_sessions.dec()

    def stream_observation(self, name: str, value: float) -> None:
        """Record a realtime observation: ttfb, final_delay (seconds), vad_start, vad_end."""
        if name == "ttfb":
            self._stt_ttfb.observe(value)
        elif name == "final_delay":
            self._stt_final_delay.observe(value)
        elif name in ("vad_start", "vad_end"):
            self._stt_vad_events.labels(
                "speech_start" if name == "vad_start" else "speech_end"
            ).inc()

    def session_duration(self, seconds: float) -> None:
        """A realtime session lasted ``seconds``."""
        self._stt_session_duration.observe(seconds)

    def segment_force_committed(self, reason: str) -> None:
        """A realtime segment was cut before the VAD ended it (``ring_buffer`` or ``client``)."""
        self._stt_force_commits.labels(reason).inc()

    def dictation_extended(self) -> None:
        """A realtime segment's end waited the dictation silence."""
        self._stt_dictation_extended.inc()

    def session_lagging(self) -> None:
        """A realtime segment's final became overdue (``session.lagging``)."""
        self._stt_lagging.inc()

    def worker_recovery(self, outcome: str) -> None:
        """A realtime session's broken worker stream was ``recovered`` or ``failed``."""
        self._stt_recoveries.labels(outcome).inc()

    def final_confidence(self, model: str, confidence: float) -> None:
        """Fold the confidence of a non-empty realtime final into its model's average."""
        window = self._confidences.setdefault(model, deque(maxlen=_CONFIDENCE_WINDOW))
        window.append(confidence)
        self._stt_confidence.labels(model).set(sum(window) / len(window))

    def request_done(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        """Record one finished HTTP request."""
        self._requests.labels(endpoint, method, str(status)).inc()
        self._duration.labels(endpoint).observe(seconds)

    def error(self, endpoint: str, code: str) -> None:
        """Record an error answer."""
        self._errors.labels(endpoint, code).inc()

    def watch_schedulers(self, handles: Callable[[], Iterable[WorkerHandle]]) -> None:
        """Export the scheduling figures of the workers ``handles()`` lists at each scrape."""
        self.registry.register(_SchedulerCollector(handles))

    def worker_changed(self, handle: WorkerHandle) -> None:
        """Mirror a worker's state (used as the manager's change listener)."""
        self._worker_state.labels(handle.worker_id, handle.model_name).state(handle.state.value)
        self._worker_restarts.labels(handle.worker_id, handle.model_name).set(handle.restarts_total)

    def tts_first_audio(self, model: str, seconds: float) -> None:
        """Speech: the first audio bytes of a request left for the client."""
        self._tts_ttfb.labels(model).observe(seconds)

    def tts_synthesis_done(self, model: str, seconds: float) -> None:
        """Speech: the worker sent the last audio of a request."""
        self._tts_synthesis.labels(model).observe(seconds)

    def tts_request_done(self, model: str, response_format: str, outcome: str) -> None:
        """Speech: a request ended (``outcome``: ok, invalid, error or cancelled)."""
        self._tts_requests.labels(model, response_format, outcome).inc()

    def speech_ended(self, reason: str) -> None:
        """A reply spoken inside a session ended (``done``, ``cancelled``, ``barge_in``,
        ``error``)."""
        self._session_speech.labels(reason).inc()
        if reason == "barge_in":
            self._barge_ins.inc()

    def voice_to_voice(self, seconds: float) -> None:
        """Caller speech end to the first audio of the reply that answers it."""
        self._v2v.observe(seconds)

    def muted_audio(self, seconds: float) -> None:
        """Incoming audio muted while the session's speech played."""
        self._muted_audio.inc(seconds)

    def call_started(self, transport: str) -> None:
        """A phone call started on ``transport``."""
        self._calls_active.labels(transport).inc()

    def call_ended(self, transport: str, reason: str, *, was_active: bool = True) -> None:
        """A phone call ended (or was refused: ``was_active`` False)."""
        if was_active:
            self._calls_active.labels(transport).dec()
        self._calls.labels(transport, reason).inc()

    def rtp_packets(self, outcome: str, count: int = 1) -> None:
        """Count RTP packets with ``outcome`` (received, lost, late, malformed, ...)."""
        if count:
            self._rtp_packets.labels(outcome).inc(count)

    def rtp_jitter(self, seconds: float) -> None:
        """A sample of one RTP call's interarrival jitter."""
        self._rtp_jitter.observe(seconds)

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)
