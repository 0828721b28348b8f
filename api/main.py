"""The FastAPI sidecar: `uvicorn api.main:app --host 127.0.0.1 --port 8000`.

The champion is loaded from the model store when the app starts, without holding the start
up: until it is loaded (store empty or unreachable), /health answers 503 and the watcher keeps
trying every DPE_RELOAD_INTERVAL_S; it also swaps in each newly promoted champion.
"""

import asyncio
import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse

from api.routers import admin, health, model, predict
from api.state import ServingState
from core.config import DEFAULT_API_TOKEN, Settings, get_settings
from core.errors import DpeError
from core.predict import PredictionSink

log = logging.getLogger("api")


def check_production_token(settings: Settings) -> None:
    if settings.env == "production" and settings.api_token in ("", DEFAULT_API_TOKEN):
        raise DpeError(
            "DPE_ENV=production needs a DPE_API_TOKEN of your own: "
            f"it is {'empty' if not settings.api_token else 'the default one'}"
        )


class BodySizeLimit:
    """413 before reading a body whose Content-Length is above DPE_MAX_UPLOAD_MB: FastAPI
    would otherwise read (and spool) the whole upload before any route code runs."""

    def __init__(self, app, limit_mb: int):
        self.app = app
        self.limit_mb = limit_mb

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            length = dict(scope["headers"]).get(b"content-length", b"0")
            if length.isdigit() and int(length) > self.limit_mb * 2**20:
                detail = (
                    f"request body of {int(length)} bytes: at most {self.limit_mb} MB "
                    "(DPE_MAX_UPLOAD_MB)"
                )
                response = JSONResponse(
                    {"detail": detail}, status_code=status.HTTP_413_CONTENT_TOO_LARGE
                )
                return await response(scope, receive, send)
        return await self.app(scope, receive, send)


class PredictionLog:
    """The API's prediction sink: `core.monitoring.PredictionLogger.log`, taking the records
    as columns (see core.predict), so that no DataFrame is built per request only to be taken
    apart. The logger (pandas and pyarrow: ~0.3 s of imports) is created by the first
    prediction, on the sink's thread, rather than at start up."""

    takes_columns = True

    def __init__(self, settings: Settings):
        self.settings = settings
        self.logger = None

    def __call__(self, records, results, model_version, source) -> None:
        if self.logger is None:
            from core.monitoring import PredictionLogger

            self.logger = PredictionLogger(self.settings)
        self.logger.log(records, results, model_version, source)

    def close(self) -> None:
        """Write what is still queued."""
        if self.logger is not None:
            self.logger.close()


def create_app(
    settings: Settings | None = None, prediction_sink: PredictionSink | None = None
) -> FastAPI:
    """The app, with `settings` (default: `get_settings()`, from the environment) as its one
    Settings; `prediction_sink` receives every prediction off the request path (default: the
    prediction log, unless DPE_LOG_PREDICTIONS=false; see core.predict.PredictionSink)."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # Our INFO lines (which champion is served, why none is) next to uvicorn's.
        logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(name)s: %(message)s")
        try:
            check_production_token(settings)
        except DpeError as error:
            log.error("refusing to start: %s", error)
            raise
        sink, log_sink = prediction_sink, None
        if sink is None and settings.log_predictions:
            sink = log_sink = PredictionLog(settings)  # writes off the request path
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
    )
    app.state.settings = settings
    app.add_middleware(BodySizeLimit, limit_mb=settings.max_upload_mb)
    for router in (health.router, model.router, predict.router, admin.router):
        app.include_router(router)

    @app.exception_handler(DpeError)
    async def user_error(request: Request, error: DpeError):
        return JSONResponse({"detail": str(error)}, status.HTTP_422_UNPROCESSABLE_CONTENT)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception):
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return JSONResponse(
            {"detail": f"internal error ({type(error).__name__}): {error}"},
            status.HTTP_500_INTERNAL_SERVER_ERROR,
        )

    return app


app = create_app()
