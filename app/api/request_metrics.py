"""The API process's own metrics: per-endpoint request durations and counts, and the latency of
the predictions it serves (`clm_prediction_latency_seconds`, by model type).

Labels stay bounded: `endpoint` is the matched URL rule (`/api/models/<model_id>`, never the
raw path; `<unmatched>` when no rule matched, so a scan of random paths adds no series),
`method` one of the standard verbs (anything else is `OTHER`), `status` the response code.

Unlike `app.operations.metrics` (read from the database at scrape time, the same in every process),
these numbers exist only in the process that served the request, and a scrape reaches one
gunicorn worker. (Prediction latency was read from `prediction_logs` once: a scan of a table
that grows by millions of rows a day at every scrape, and a "counter" that fell whenever
retention deleted old logs, which Prometheus reads as a reset. Observed where the
prediction is served, it costs nothing at scrape time and only ever grows.) So:

- `PROMETHEUS_MULTIPROC_DIR` set: prometheus_client's multiprocess mode. Every worker
  writes its samples to files in that directory and `/metrics` sums them over all workers.
  The variable must be set before the process starts (prometheus_client picks its value
  store at import), and the directory must exist and be emptied before gunicorn forks:
  `gunicorn.conf.py` does both. The Procfile and docker-compose.yml set it for the API.
- unset (`flask run`, one process, the tests): a registry of this app alone.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from flask import Flask, Response, g, request
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, multiprocess

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
UNMATCHED = "<unmatched>"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Seconds: from a cached read (ms) to a synchronous prediction on a large candle body.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
LABELS = ("endpoint", "method", "status")
_EXTENSION = "clm_request_metrics"  # where `install` keeps the app's metrics (app.extensions)
# Seconds: a cached prediction takes about a millisecond, a cold one (new candle) tens.
PREDICTION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


@dataclass(frozen=True)
class RequestMetrics:
    duration: Histogram
    requests: Counter
    prediction: Histogram  # PredictionService latency of each served prediction, by model type
    registry: CollectorRegistry | None  # None: multiprocess mode, read from the directory when rendered

    def observe(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        labels = (endpoint, method if method in METHODS else "OTHER", str(status))
        self.duration.labels(*labels).observe(seconds)
        self.requests.labels(*labels).inc()

    def render(self) -> bytes:
        if self.registry is not None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)


def _build(registry: CollectorRegistry | None) -> RequestMetrics:
    duration = Histogram(
        "clm_api_request_duration_seconds",
        "API request duration by endpoint (URL rule), method and status",
        LABELS,
        buckets=DURATION_BUCKETS,
        registry=registry,
    )
    requests = Counter(
        "clm_api_requests", "API requests by endpoint (URL rule), method and status", LABELS, registry=registry
    )
    prediction = Histogram(
        "clm_prediction_latency_seconds",
        "latency of the predictions this API served (PredictionService, both models), by model type",
        ("model_type",),
        buckets=PREDICTION_BUCKETS,
        registry=registry,
    )
    return RequestMetrics(duration, requests, prediction, registry)


_multiprocess: RequestMetrics | None = None


def request_metrics() -> RequestMetrics:
    """One set per process in multiprocess mode (its samples live in files); otherwise one per app."""
    global _multiprocess
    if os.environ.get(MULTIPROC_ENV):
        if _multiprocess is None:
            _multiprocess = _build(None)
        return _multiprocess
    return _build(CollectorRegistry())


def install(app: Flask) -> None:
    """Time every request of `app` (before/after request hooks); `/metrics` adds `render_request_metrics`."""
    metrics = request_metrics()
    app.extensions[_EXTENSION] = metrics

    @app.before_request
    def _start_timer() -> None:
        g.clm_request_started = time.perf_counter()

    @app.after_request
    def _observe(response: Response) -> Response:
        started = g.pop("clm_request_started", None)
        if started is not None:
            rule = request.url_rule
            endpoint = rule.rule if rule is not None else UNMATCHED
            metrics.observe(endpoint, request.method, response.status_code, time.perf_counter() - started)
        return response


def _installed(app: Flask) -> RequestMetrics | None:
    metrics: RequestMetrics | None = app.extensions.get(_EXTENSION)
    return metrics


def observe_prediction(app: Flask, model_type: str, seconds: float) -> None:
    metrics = _installed(app)
    if metrics is not None:
        metrics.prediction.labels(model_type).observe(seconds)


def render_request_metrics(app: Flask) -> bytes:
    metrics = _installed(app)
    return metrics.render() if metrics is not None else b""
