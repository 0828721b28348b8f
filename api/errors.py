"""One error model for every route: `{"detail": "...", "code": "..."}` (a sentence a person
can act on, and a code a program can), plus `errors` (each field's problem) when the request
does not fit the schema (422).

The library's errors are mapped here, once, by kind (`core.errors`): invalid input 422,
not found 404, conflict 409, unavailable 503 (the only kind worth retrying), each with its
kind's code. Other refusals (401, 413, 429...) keep their status and take a code from it
(`STATUS_CODES`); an unexpected error is a 500 `internal_error`.

What a client sent is never echoed: it may be huge, or text that cannot even be encoded
(a lone surrogate such as "\\ud800" is valid JSON but not valid Unicode).
"""

from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from api.deps import count_refusal
from core.errors import INTERNAL_ERROR, Conflict, DpeError, InvalidInput, NotFound, Unavailable

MAX_LISTED_ERRORS = 100  # a 10,000-record request can fail 10,000 times: say how many
MAX_DETAIL_ERRORS = 3
# The code of an answer by its status: the library's kinds' own for theirs.
STATUS_CODES = {
    status.HTTP_400_BAD_REQUEST: "bad_request",  # a body that cannot be parsed at all
    status.HTTP_401_UNAUTHORIZED: "unauthorized",
    status.HTTP_404_NOT_FOUND: NotFound.code,
    status.HTTP_405_METHOD_NOT_ALLOWED: "method_not_allowed",
    status.HTTP_408_REQUEST_TIMEOUT: "too_slow",  # an upload below DPE_UPLOAD_MIN_KB_S
    status.HTTP_409_CONFLICT: Conflict.code,
    status.HTTP_413_CONTENT_TOO_LARGE: "too_large",
    status.HTTP_422_UNPROCESSABLE_CONTENT: InvalidInput.code,
    status.HTTP_429_TOO_MANY_REQUESTS: "too_many_requests",
    status.HTTP_500_INTERNAL_SERVER_ERROR: INTERNAL_ERROR,
    status.HTTP_503_SERVICE_UNAVAILABLE: Unavailable.code,
}


def add_error_handlers(app: FastAPI) -> None:
    # The decorator form: add_exception_handler's type wants handlers of any Exception.
    app.exception_handler(RequestValidationError)(invalid_request)
    app.exception_handler(DpeError)(user_error)
    app.exception_handler(HTTPException)(http_error)


def status_code(http_status: int) -> str:
    """The `code` of an answer with this HTTP status that no DpeError made."""
    return STATUS_CODES.get(http_status, f"http_{http_status}")


def problem(
    detail: str, http_status: int, code: str | None = None, headers=None, **extra: Any
) -> JSONResponse:
    """An error answer: `{"detail", "code", **extra}` (code by default from the status)."""
    body = {"detail": _safe(detail), "code": code or status_code(http_status), **extra}
    return JSONResponse(body, http_status, headers=headers)


async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
    if request.url.path.startswith("/predict"):
        count_refusal(request, "invalid_request")
    errors = [
        {"loc": [_safe(part) for part in e["loc"]], "msg": _safe(_message(e)), "type": e["type"]}
        for e in error.errors()
    ]
    return problem(
        _summary(errors),
        status.HTTP_422_UNPROCESSABLE_CONTENT,
        InvalidInput.code,
        errors=errors[:MAX_LISTED_ERRORS],
    )


async def user_error(request: Request, error: DpeError) -> JSONResponse:
    """A library error: its kind's status and code."""
    return problem(str(error), error.http_status, error.code)


async def http_error(request: Request, error: HTTPException) -> JSONResponse:
    """A refusal of the API's own (no model loaded, a wrong token, too big): its status, a
    code from it, its headers (WWW-Authenticate, Retry-After)."""
    return problem(str(error.detail), error.status_code, headers=error.headers)


def _message(error: dict) -> str:
    if error["type"] == "json_invalid":  # where and why the JSON does not parse
        return f"{error['msg']}: {error.get('ctx', {}).get('error', '')}".rstrip(": ")
    return error["msg"]


def _summary(errors: list[dict]) -> str:
    """`records.0.surface_utile: Input should be a valid number; ...` for the first few."""
    parts = []
    for e in errors[:MAX_DETAIL_ERRORS]:
        where = ".".join(str(part) for part in e["loc"][1:] or e["loc"])  # without "body"
        parts.append(f"{where}: {e['msg']}" if where else e["msg"])
    more = len(errors) - MAX_DETAIL_ERRORS
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


def _safe(value):
    """Text that UTF-8 can encode (a surrogate becomes its `\\udXXX` escape); ints as they are."""
    if isinstance(value, int):
        return value
    return str(value).encode("utf-8", "backslashreplace").decode("utf-8")
