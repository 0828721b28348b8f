"""What reaches the workbench's server in production, decided before Streamlit reads a byte
(an ASGI middleware of `workbench_server.app`).

- Uploads (`PUT /_stcore/upload_file/...`) need a signed-in user: Streamlit's signed login
  cookie (`DPE_WORKBENCH_LOGIN=oidc`), or the login proxy's secret header (`proxy`). The
  login page has a Streamlit session too, and Streamlit keeps an accepted upload in memory
  for the session's life: before login an upload is refused with its body unread, so the
  upload limit before login is zero bytes (after login: `server.maxUploadSize`).
- Behind a login proxy (`proxy`), every request but the health check must carry the proxy's
  secret (`DPE_WORKBENCH_PROXY_SECRET` in the header `X-DPE-Proxy-Secret`): a client that
  reaches the port directly cannot claim a user with `X-Forwarded-Email`.

In development everything passes, as before.
"""

import hmac
import json
from collections.abc import Mapping
from http.cookies import SimpleCookie

from starlette.types import ASGIApp, Receive, Scope, Send

from core.config import Settings, get_settings

PROXY_SECRET_HEADER = "X-DPE-Proxy-Secret"
UPLOAD_PATH = "/_stcore/upload_file/"
HEALTH_PATH = "/_stcore/health"
LOGIN_COOKIE = "_streamlit_user"  # Streamlit's signed cookie after st.login


def from_proxy(headers: Mapping[str, str], settings: Settings) -> bool:
    """The request carries the login proxy's secret (never true without a secret set)."""
    secret = settings.workbench_proxy_secret.get_secret_value()
    supplied = headers.get(PROXY_SECRET_HEADER.lower(), "")
    return bool(secret) and hmac.compare_digest(supplied.encode(), secret.encode())


def signed_in(cookie_header: str) -> bool:
    """The request carries Streamlit's login cookie (whole, or in chunks as Streamlit splits
    a large one), signed with the [auth] cookie_secret, read as Streamlit reads it."""
    from streamlit.auth_util import get_cookie_with_chunks
    from streamlit.web.server.server_util import get_cookie_secret
    from streamlit.web.server.starlette.starlette_app_utils import decode_signed_value

    cookies = SimpleCookie()
    cookies.load(cookie_header)
    secret = get_cookie_secret()

    def signed(name: str) -> bytes | None:
        if name not in cookies:
            return None
        return decode_signed_value(secret, name, cookies[name].value.encode("latin-1"))

    decoded = get_cookie_with_chunks(signed, LOGIN_COOKIE)
    if decoded is None:
        return False
    try:
        return json.loads(decoded).get("is_logged_in") is True
    except (ValueError, AttributeError):
        return False


def refusal(scope: Scope, settings: Settings) -> tuple[int, str] | None:
    """(status, reason) when this request may not reach Streamlit, else None."""
    if settings.env != "production" or scope["path"] == HEALTH_PATH:
        return None
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}
    if settings.workbench_login == "proxy":
        if from_proxy(headers, settings):
            return None
        return 403, "open the workbench through its login proxy"
    if scope["path"].startswith(UPLOAD_PATH) and not signed_in(headers.get("cookie", "")):
        return 401, "sign in before uploading a file"
    return None


class LoginGate:
    """ASGI middleware: answers `refusal` itself (HTTP status, or a refused WebSocket
    handshake); anything else goes on to Streamlit."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        refused = refusal(scope, get_settings()) if scope["type"] in ("http", "websocket") else None
        if refused is None:
            await self.app(scope, receive, send)
        elif scope["type"] == "websocket":
            await receive()  # the handshake; closing before accepting answers it 403
            await send({"type": "websocket.close", "code": 1008, "reason": refused[1]})
        else:
            status, reason = refused
            body = reason.encode()
            headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"connection", b"close")]
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
