"""One error model for every route: `{"detail": "..."}` (a sentence a person can act on), plus
`errors` (each field's problem) when the request does not fit the schema (422).

What a client sent is never echoed: it may be huge, or text that cannot even be encoded
(a lone surrogate such as "\\ud800" is valid JSON but not valid Unicode).
"""

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from api.deps import count_refusal
from core.errors import DpeError

MAX_LISTED_ERRORS = 100  # a 10,000-record request can fail 10,000 times: say how many
MAX_DETAIL_ERRORS = 3


def add_error_handlers(app: FastAPI) -> None:
    # The decorator form: add_exception_handler's type wants handlers of any Exception.
    app.exception_handler(RequestValidationError)(invalid_request)
    app.exception_handler(DpeError)(user_error)


async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
    if request.url.path.startswith("/predict"):
        count_refusal(request, "invalid_request")
    errors = [
        {"loc": [_safe(part) for part in e["loc"]], "msg": _safe(_message(e)), "type": e["type"]}
        for e in error.errors()
    ]
    return JSONResponse(
        {"detail": _summary(errors), "errors": errors[:MAX_LISTED_ERRORS]},
        status.HTTP_422_UNPROCESSABLE_CONTENT,
    )


async def user_error(request: Request, error: DpeError) -> JSONResponse:
    return JSONResponse({"detail": _safe(str(error))}, status.HTTP_422_UNPROCESSABLE_CONTENT)


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
