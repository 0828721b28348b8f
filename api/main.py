"""The FastAPI sidecar: `uvicorn api.main:app --host 127.0.0.1 --port 8000`.

The champion is loaded from the model store when the app starts, without holding the start
up: until it is loaded (store empty or unreachable), /health answers 503 and the watcher keeps
trying every DPE_RELOAD_INTERVAL_S; it also swaps in each newly promoted champion.

Around the routes (api.middleware): an error boundary (no exception text in a 500, the
connection kept, a request id from X-Request-ID or generated, in the answer and every log
line), request metrics (api.metrics, GET /metrics), the upload size counted as it streams,
and a bound on concurrent uploads, each kept only at a minimum rate. JSON bodies are
bounded as they stream in too (api.json_limits). Logs are JSON lines on stdout (api.logs).
Errors share one body (api.errors); tokens are checked in api.auth; /docs and /redoc are
served offline (api.docs). Probes: /livez, /readyz; /health for existing clients.

Run it with `dpe api`, or `uvicorn api.main:app --no-proxy-headers`: X-Forwarded-For
is then believed only from DPE_TRUSTED_PROXIES, not from any loopback peer as uvicorn would.
"""

import asyncio
import logging
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import FastAPI
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from api.auth import FailedAttempts, PredictBearer, check_production_tokens
from api.docs import add_offline_docs
from api.errors import add_error_handlers
from api.logs import configure_logging
from api.metrics import Metrics, RequestMetrics
from api.middleware import BodySizeLimit, ErrorBoundary, UploadSlots
from api.routers import admin, health, index, metrics, model, predict
from api.state import ServingState
from core import tempfiles
from core.config import Settings, get_settings
from core.errors import DpeError
from core.serving.champion import PredictionSink

if TYPE_CHECKING:  # imported when the first prediction is logged, not at start
    from core.monitoring.prediction_log import PredictionLogger

log = logging.getLogger("api")


class PredictionLog:
    """The API's prediction sink: `core.monitoring.prediction_log.PredictionLogger.log`,
    taking the records as columns (see core.serving.champion), so that no DataFrame is built
    per request only to be taken apart. The logger (pandas and pyarrow: ~0.3 s of imports)
    is created by the first prediction, on the sink's thread, rather than at start up."""

    takes_columns = True

    def __init__(self, settings: Settings):
        self.settings = settings
        self.logger: PredictionLogger | None = None

    def __call__(self, records, results, model_version, source, client, request_id) -> None:
        if self.logger is None:
            from core.monitoring.prediction_log import PredictionLogger

            self.logger = PredictionLogger(self.settings)
        self.logger.log(records, results, model_version, source, client, request_id)

    def close(self) -> None:
        """Write what is still queued."""
        if self.logger is not None:
            self.logger.close()


class CountingSink:
    """Counts each prediction in the metrics, then hands it to `inner` (if any), on the sink
    thread: counting costs the request nothing."""

    def __init__(self, metrics: Metrics, inner: PredictionSink | None):
        self.metrics, self.inner = metrics, inner
        # Takes what `inner` takes; counting alone needs no records at all.
        self.takes_columns = inner is None or getattr(inner, "takes_columns", False)

    def __call__(self, records, results, model_version, source, **who) -> None:
        self.metrics.count(results, model_version, source)
        if self.inner is not None:
            self.inner(records, results, model_version, source, **who)


def create_app(
    settings: Settings | None = None, prediction_sink: PredictionSink | None = None
) -> FastAPI:
    """The app, with `settings` (default: `get_settings()`, from the environment) as its one
    Settings; `prediction_sink` receives every prediction off the request path (default: the
    prediction log, unless DPE_LOG_PREDICTIONS=false; see core.serving.champion.PredictionSink)."""
    settings = settings or get_settings()
    # One JSON object per line on stdout, uvicorn's lines too: set when uvicorn imports the
    # app, after it configured its own loggers.
    configure_logging()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        try:
            check_production_tokens(settings)
        except DpeError as error:
            log.error("refusing to start: %s", error)
            raise
        # What a killed predecessor spooled (an upload's copy) would otherwise stay forever.
        tempfiles.remove_left_behind()
        sink, log_sink = prediction_sink, None
        if sink is None and settings.log_predictions:
            sink = log_sink = PredictionLog(settings)  # writes off the request path
        if app.state.metrics is not None:
            sink = CountingSink(app.state.metrics, sink)
        app.state.serving = ServingState(settings, sink)
        watcher = asyncio.create_task(app.state.serving.watch())
        yield
        watcher.cancel()
        if log_sink:
            log_sink.close()

    app = FastAPI(
        title="DPE workbench API",
        summary="Energy label (A–G) of tertiary buildings, from the promoted champion model.",
        version="1.0",
        lifespan=lifespan,
        docs_url=None,  # served offline by api.docs
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.failed_admin_attempts = FailedAttempts(settings.admin_failures_per_minute)
    app.state.metrics = Metrics() if settings.metrics else None
    # The last added runs first: the error boundary wraps everything.
    app.add_middleware(
        UploadSlots,
        slots=settings.max_concurrent_uploads,
        min_kb_s=settings.upload_min_kb_s,
        grace_s=settings.upload_grace_s,
    )
    app.add_middleware(BodySizeLimit, limit_mb=settings.max_upload_mb)
    if app.state.metrics is not None:  # sees every answer, a refusal or a 500 included
        app.add_middleware(RequestMetrics, metrics=app.state.metrics)
        app.include_router(metrics.router)
    app.add_middleware(ErrorBoundary)
    if settings.trusted_proxies:  # the client is who these proxies forward for
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxies)
    add_error_handlers(app)
    add_offline_docs(app)
    for router in (index.router, health.router, model.router, admin.router):
        app.include_router(router)
    # The schema shows the bearer on /predict* only when it is required.
    guard = [PredictBearer] if settings.predict_token else []
    app.include_router(predict.router, dependencies=guard)
    return app


app = create_app()
