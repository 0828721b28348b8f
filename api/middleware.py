"""Pure ASGI middleware guarding the app: uncaught errors, request ids, body size, uploads.

Pure ASGI (not `BaseHTTPMiddleware`) so that a body is never read or buffered here: the
limits act on the stream as it comes in.
"""

import asyncio
import logging
import re
import uuid

from fastapi import HTTPException, status
from starlette.datastructures import Headers, MutableHeaders

from api.errors import problem
from api.logs import REQUEST_ID

log = logging.getLogger("api")

REQUEST_ID_HEADER = "x-request-id"
# An id a client sends is kept only if it is short and plain (no header or log injection);
# otherwise, or when it sends none, the request gets a new one.
_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}")
# A POST declaring a body up to this size is not an upload: it takes no upload slot.
SMALL_BODY_BYTES = 2**20
RETRY_UPLOAD_AFTER_S = 5


class ErrorBoundary:
    """The outermost layer: gives each request an id (the client's `X-Request-ID`, else a new
    one), set for the request's log lines (api.logs.REQUEST_ID) and returned in the response
    header, and turns any uncaught error into a 500 that says nothing of the error but its
    request id (the traceback goes to the log). Unlike Starlette's ServerErrorMiddleware it
    does not raise the error again once answered, so uvicorn keeps the connection: the
    client's next request on it works."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        request_id = Headers(scope=scope).get(REQUEST_ID_HEADER, "")
        if not _SAFE_REQUEST_ID.fullmatch(request_id):
            request_id = uuid.uuid4().hex
        started = False

        async def send_with_id(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        token = REQUEST_ID.set(request_id)
        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception("unexpected error on %s %s", scope.get("method"), scope.get("path"))
            if started:  # too late for a 500: uvicorn ends the response and the connection
                raise
            detail = f"internal error: the API log has the details (request id {request_id})"
            response = problem(detail, status.HTTP_500_INTERNAL_SERVER_ERROR)
            await response(scope, receive, send_with_id)
        finally:
            REQUEST_ID.reset(token)


class BodyTooLarge(HTTPException):
    """Raised from `receive` once a body passes the limit. An HTTPException, so that FastAPI
    answers it as it is (413) wherever the body was being read, JSON or multipart."""

    def __init__(self, limit_mb: int):
        super().__init__(
            status.HTTP_413_CONTENT_TOO_LARGE,
            f"request body above {limit_mb} MB (DPE_MAX_UPLOAD_MB)",
            # The rest of the body is not read: the connection cannot be reused.
            headers={"Connection": "close"},
        )


class BodySizeLimit:
    """413 for a body above `limit_mb`, counted as it streams in (Content-Length or chunked
    alike): reading stops at the limit, so memory never holds more than the limit."""

    def __init__(self, app, limit_mb: int):
        self.app = app
        self.limit_mb = limit_mb
        self.limit = limit_mb * 2**20

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = Headers(scope=scope).get("content-length", "")
        if length.isdigit() and int(length) > self.limit:  # refused before reading a byte
            return await _answer(BodyTooLarge(self.limit_mb), scope, receive, send)
        received = 0

        async def counted_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise BodyTooLarge(self.limit_mb)
            return message

        await _guarded(self.app, scope, counted_receive, send)


class UploadTooSlow(HTTPException):
    """Raised from `receive` when an upload falls too far behind the minimum rate: 408, and
    the connection closed (the rest of the body is not read)."""

    def __init__(self, received: int, seconds: float, min_kb_s: float):
        super().__init__(
            status.HTTP_408_REQUEST_TIMEOUT,
            f"upload too slow: {received / 1000:.0f} KB in {seconds:.0f} s, at least "
            f"{min_kb_s:g} KB/s needed (DPE_UPLOAD_MIN_KB_S)",
            headers={"Connection": "close"},
        )


class UploadSlots:
    """At most `slots` uploads (POSTs whose body is chunked or above SMALL_BODY_BYTES) at
    once; past that, 503 with Retry-After before reading their body. A few large uploads
    would otherwise hold the memory of many.

    An upload keeps its slot only while it arrives at `min_kb_s` on average, `grace_s` of
    lag allowed (its start, a pause): a byte a second must not hold a slot for hours. The
    next piece of the body is awaited until the time the bytes so far buy; past it, 408."""

    def __init__(self, app, slots: int, min_kb_s: float, grace_s: float):
        self.app = app
        self.free = slots
        self.bytes_per_s = min_kb_s * 1000
        self.grace_s = grace_s

    async def __call__(self, scope, receive, send):
        if not _is_upload(scope):
            return await self.app(scope, receive, send)
        if self.free <= 0:  # one event loop: no await between this test and the take
            error = HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE,
                "too many uploads at once (DPE_MAX_CONCURRENT_UPLOADS): retry shortly",
                headers={"Retry-After": str(RETRY_UPLOAD_AFTER_S), "Connection": "close"},
            )
            return await _answer(error, scope, receive, send)
        self.free -= 1
        held = True

        def release() -> None:
            nonlocal held
            if held:
                self.free, held = self.free + 1, False

        async def releasing_send(message):
            # Freed with the answer's last byte, not after the background tasks that follow
            # (a spooled file's removal): a client's next upload must find its slot free.
            if message["type"] == "http.response.body" and not message.get("more_body"):
                release()
            await send(message)

        try:
            await _guarded(self.app, scope, self._paced(receive), releasing_send)
        finally:
            release()

    def _paced(self, receive):
        if not self.bytes_per_s:
            return receive
        loop = asyncio.get_running_loop()
        started = loop.time()
        received, done = 0, False

        async def paced_receive():
            nonlocal received, done
            if done:  # the body is in: what follows is the wait for a disconnect
                return await receive()
            deadline = started + self.grace_s + received / self.bytes_per_s
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                seconds = loop.time() - started
                raise UploadTooSlow(received, seconds, self.bytes_per_s / 1000) from None
            received += len(message.get("body", b""))
            done = not message.get("more_body", False)
            return message

        return paced_receive


def _is_upload(scope) -> bool:
    if scope["type"] != "http" or scope["method"] != "POST":
        return False
    headers = Headers(scope=scope)
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return True  # of unknown size
    length = headers.get("content-length", "0")  # neither header: no body
    return not length.isdigit() or int(length) > SMALL_BODY_BYTES


async def _guarded(app, scope, receive, send) -> None:
    """Run `app`; answer an HTTPException raised by `receive` (a body refused as it streams
    in) that reached us, read outside FastAPI's body parsing, unless an answer started."""
    started = False

    async def watched_send(message):
        nonlocal started
        started = started or message["type"] == "http.response.start"
        await send(message)

    try:
        await app(scope, receive, watched_send)
    except (BodyTooLarge, UploadTooSlow) as error:
        if started:
            raise
        await _answer(error, scope, receive, send)


async def _answer(error: HTTPException, scope, receive, send) -> None:
    response = problem(error.detail, error.status_code, headers=error.headers)
    await response(scope, receive, send)
