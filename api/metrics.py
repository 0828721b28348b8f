"""Prometheus metrics (prometheus_client), served as text at GET /metrics.

HTTP: `dpe_http_request_duration_seconds{method, route, status}` (a histogram, the route as
declared, e.g. /predict) and `dpe_http_requests_in_flight`. Predictions:
`dpe_predictions_total{label, model_version, source}`, `dpe_prediction_errors_total{reason}`
(a record that could not be predicted: "invalid_record"; a request refused: "no_model",
"too_many_records" (a JSON body over a limit of api.json_limits), "invalid_request",
"unreadable_csv"). The champion:
`dpe_champion_info{model_version, run_id, dataset_version}` (1 for the one served) and
`dpe_champion_load_seconds`; `dpe_champion_problem` (1 while no champion loads, the store
cannot be read, the served files no longer match the manifest, or the newest champion
failed to load).

With several worker processes, set PROMETHEUS_MULTIPROC_DIR (an empty folder, one per
start): each process writes its values there and /metrics adds them up, whichever worker
answers (prometheus_client's multiprocess mode).

Our own middleware rather than prometheus-fastapi-instrumentator: its in-flight gauge goes to
the global registry whatever registry it is given, so a second app in one process fails.
"""

import os
import time
from collections import Counter as Tally

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
MULTIPROCESS = "PROMETHEUS_MULTIPROC_DIR"


class Metrics:
    """The app's metrics, in a registry of its own (tests build many apps in one process)."""

    def __init__(self):
        self.registry = registry = CollectorRegistry()
        self.latency = Histogram(
            "dpe_http_request_duration_seconds",
            "Time to answer an HTTP request, per route and status",
            ["method", "route", "status"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.in_flight = Gauge(
            "dpe_http_requests_in_flight",
            "HTTP requests being answered",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.predictions = Counter(
            "dpe_predictions",
            "Records predicted, per predicted label, model version and source",
            ["label", "model_version", "source"],
            registry=registry,
        )
        self.errors = Counter(
            "dpe_prediction_errors",
            "Records not predicted, or prediction requests refused, per reason",
            ["reason"],
            registry=registry,
        )
        self.champion_info = Gauge(
            "dpe_champion_info",
            "The champion served (1)",
            ["model_version", "run_id", "dataset_version"],
            registry=registry,
            multiprocess_mode="livemax",
        )
        self.champion_load = Gauge(
            "dpe_champion_load_seconds",
            "Time the served champion took to load",
            registry=registry,
            multiprocess_mode="livemax",
        )
        self.champion_problem = Gauge(
            "dpe_champion_problem",
            "1 while the champion cannot be loaded, refreshed or checked (store unreachable, "
            "files changed, the newest one failed to load): /health says why",
            registry=registry,
            multiprocess_mode="livemax",
        )
        self._champion_labels: tuple | None = None

    def count(self, results, model_version: str | None, source: str) -> None:
        """Count a batch of predictions (core.serving.champion's Prediction dicts)."""
        labels = Tally(result.get("label") for result in results)
        failed = labels.pop(None, 0)
        for label, count in labels.items():
            self.predictions.labels(label, str(model_version), source).inc(count)
        if failed:
            self.errors.labels("invalid_record").inc(failed)

    def refused(self, reason: str) -> None:
        self.errors.labels(reason).inc()

    def champion(self, manifest, load_seconds: float | None) -> None:
        """Show `manifest` as the champion served (the one shown before goes to 0)."""
        labels = (manifest.model_version, manifest.run_id, manifest.dataset_version or "")
        if labels != self._champion_labels:
            if self._champion_labels is not None:
                self.champion_info.labels(*self._champion_labels).set(0)
            self.champion_info.labels(*labels).set(1)
            self._champion_labels = labels
        if load_seconds is not None:
            self.champion_load.set(load_seconds)

    def exposition(self) -> tuple[bytes, str]:
        """(body, content type) of the text a Prometheus scrape reads."""
        registry = self.registry
        if os.environ.get(MULTIPROCESS):
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST


class RequestMetrics:
    """Pure ASGI middleware: latency per route and status, requests in flight."""

    def __init__(self, app, metrics: Metrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        status = 500  # what the client gets if the app fails before answering

        async def send_watched(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        started = time.perf_counter()
        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send_watched)
        finally:
            self.metrics.in_flight.dec()
            route = scope.get("route")
            # Unmatched paths share one label: a scanner must not create a series per URL.
            path = getattr(route, "path", None) or "unmatched"
            self.metrics.latency.labels(scope["method"], path, str(status)).observe(
                time.perf_counter() - started
            )
