"""JSON logs: one object per line on stdout, for every logger of the process (ours, core's,
uvicorn's), each line of a request carrying its id (`REQUEST_ID`, set by api.middleware)."""

import logging
import sys
from contextvars import ContextVar

import structlog
from structlog.typing import EventDict, WrappedLogger

# The id of the request being served (X-Request-ID, or one generated): read by the log
# lines and by the routes, which pass it to the prediction log.
REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)


def _add_request_id(logger: WrappedLogger, method_name: str, event: EventDict) -> EventDict:
    request_id = REQUEST_ID.get()
    if request_id is not None:
        event.setdefault("request_id", request_id)
    return event


class _StdoutHandler(logging.StreamHandler):
    """Writes to `sys.stdout` as it is when a line is written (a test may swap it)."""

    dpe_json = True  # marks ours: configuring twice adds no second handler

    @property
    def stream(self):
        return sys.stdout

    @stream.setter
    def stream(self, value) -> None:
        pass  # always sys.stdout


def _access_fields(logger: WrappedLogger, method_name: str, event: EventDict) -> EventDict:
    """Uvicorn's access line as fields too: client, method, path, status."""
    args = event.pop("positional_args", ())  # a record's %-arguments (pass_foreign_args)
    if event["_record"].name == "uvicorn.access" and len(args) == 5:
        client, method, path, _, status = args
        event.update(client=client, method=method, path=path, status=status)
    return event


def _json_handler() -> logging.Handler:
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            _add_request_id,
            _access_fields,
        ],
        pass_foreign_args=True,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,  # a traceback as one "exception" field
            structlog.processors.JSONRenderer(),
        ],
    )
    handler = _StdoutHandler()
    handler.setFormatter(formatter)
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
