"""JSON logs: one object per line on stdout, for every logger of the process (ours, core's,
uvicorn's), each line of a request carrying its id (`REQUEST_ID`, set by api.middleware)."""

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime

# The id of the request being served (X-Request-ID, or one generated): read by the log
# lines and by the routes, which pass it to the prediction log.
REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)


class _StdoutHandler(logging.StreamHandler):
    """Writes to `sys.stdout` as it is when a line is written (a test may swap it)."""

    dpe_json = True  # marks ours: configuring twice adds no second handler

    @property
    def stream(self):
        return sys.stdout

    @stream.setter
    def stream(self, value) -> None:
        pass  # always sys.stdout


class JsonFormatter(logging.Formatter):
    """A record as one JSON object: `event` (the message), `timestamp` (ISO 8601, UTC),
    `level`, `logger`, the `request_id` of the request being served, uvicorn's access line
    as fields too (client, method, path, status), a traceback as one `exception` field.

    The standard library's, not structlog's: importing structlog (and rich, which it loads
    when installed) took ~0.3 s of the API's cold start for the same lines."""

    def format(self, record: logging.LogRecord) -> str:
        created = datetime.fromtimestamp(record.created, UTC).isoformat()
        line: dict[str, object] = {
            "event": record.getMessage(),
            "timestamp": created.replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        request_id = REQUEST_ID.get()
        if request_id is not None:
            line["request_id"] = request_id
        args = record.args
        if record.name == "uvicorn.access" and isinstance(args, tuple) and len(args) == 5:
            client, method, path, _, status = args
            line.update(client=client, method=method, path=path, status=status)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=repr)


def _json_handler() -> logging.Handler:
    handler = _StdoutHandler()
    handler.setFormatter(JsonFormatter())
    return handler


def configure_logging(level: int = logging.INFO) -> None:
    """Every log record of the process as one JSON line on stdout. Uvicorn's loggers,
    which print their own text lines, hand their records to ours instead."""
    root = logging.getLogger()
    if not any(getattr(handler, "dpe_json", False) for handler in root.handlers):
        root.addHandler(_json_handler())
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers = []
        uvicorn_logger.propagate = True
