"""Bearer tokens: the admin token (DPE_API_TOKEN), the optional /predict token
(DPE_PREDICT_TOKEN), their strength in production, and a brake on guessing the admin one.

Who a client is (the brake's key, the prediction log's `client`) is the connection's peer,
or, behind a proxy listed in DPE_TRUSTED_PROXIES, the address it forwards (`create_app`
applies uvicorn's proxy-headers middleware with that list only).
"""

import hashlib
import secrets
import time
from collections import deque
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param

from api.deps import SettingsDep
from core.config import DEFAULT_API_TOKEN, Settings
from core.errors import DpeError

MIN_TOKEN_LENGTH = 24
MIN_DISTINCT_CHARACTERS = 10
# zxcvbn's estimate of the guesses a token takes (log10): a random 24-character hex token is
# ~29, `abcdefghijklmnopqrstuvwx` 2.
MIN_GUESSES_LOG10 = 20
FAILURE_WINDOW_S = 60.0
MAX_TRACKED_CLIENTS = 10_000  # bounds the memory an attacker with many addresses can take


def check_production_tokens(settings: Settings) -> None:
    """With DPE_ENV=production, refuse a weak DPE_API_TOKEN (and DPE_PREDICT_TOKEN if set),
    and a DPE_PREDICT_TOKEN that is the admin token: every /predict client would hold it."""
    if settings.env != "production":
        return
    tokens = {"DPE_API_TOKEN": settings.api_token}
    if settings.predict_token:
        tokens["DPE_PREDICT_TOKEN"] = settings.predict_token
    for name, token in tokens.items():
        if problem := token_weakness(token):
            raise DpeError(
                f"DPE_ENV=production needs a strong {name}: it {problem}. "
                "Generate one with e.g. `openssl rand -hex 24`"
            )
    if settings.predict_token == settings.api_token:
        raise DpeError(
            "DPE_ENV=production needs a DPE_PREDICT_TOKEN other than DPE_API_TOKEN: whoever "
            "may predict would also hold the admin token"
        )


def token_weakness(token: str) -> str | None:
    """Why `token` is too weak for production, or None."""
    if not token:
        return "is empty"
    if token.strip().lower() == DEFAULT_API_TOKEN:
        return "is the default one"
    if any(character.isspace() for character in token):
        return "contains whitespace"
    if len(token) < MIN_TOKEN_LENGTH:
        return f"has {len(token)} characters, fewer than {MIN_TOKEN_LENGTH}"
    if len(set(token)) < MIN_DISTINCT_CHARACTERS:
        return f"has fewer than {MIN_DISTINCT_CHARACTERS} distinct characters"
    from zxcvbn import zxcvbn  # only in production, once

    guesses = zxcvbn(token)["guesses_log10"]
    if guesses < MIN_GUESSES_LOG10:
        return (
            f"is predictable (a sequence, a repetition, keyboard rows or words: about "
            f"10^{guesses:.0f} guesses, at least 10^{MIN_GUESSES_LOG10} needed)"
        )
    return None


class FailedAttempts:
    """Wrong tokens per client in a sliding window. A client with `max_failures` in the last
    FAILURE_WINDOW_S gets 429 for each wrong token, until the oldest failure leaves the
    window; the right token still passes (a guesser sharing the admin's address must not
    lock the admin out). In memory, per API process."""

    def __init__(self, max_failures: int, clock=time.monotonic):
        self.max_failures = max_failures
        self.clock = clock
        self._failures: dict[str, deque[float]] = {}

    def retry_after(self, client: str) -> int:
        """Seconds `client` must wait before trying again; 0 when it may try now."""
        failures = self._recent(client)
        if len(failures) < self.max_failures:
            return 0
        return max(1, int(failures[0] + FAILURE_WINDOW_S - self.clock()) + 1)

    def add(self, client: str) -> None:
        failures = self._failures.pop(client, None) or deque(maxlen=self.max_failures)
        failures.append(self.clock())
        self._failures[client] = failures  # newest last: the oldest are dropped first
        while len(self._failures) > MAX_TRACKED_CLIENTS:
            del self._failures[next(iter(self._failures))]

    def _recent(self, client: str) -> deque[float]:
        failures = self._failures.get(client, deque())
        while failures and failures[0] <= self.clock() - FAILURE_WINDOW_S:
            failures.popleft()
        return failures


_bearer = HTTPBearer(
    auto_error=False, description="DPE_API_TOKEN (admin) or DPE_PREDICT_TOKEN (/predict*)"
)
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
# Declares the bearer scheme on /predict* in the OpenAPI schema (`create_app` adds it when
# DPE_PREDICT_TOKEN is set); `check_predict_token` checks it, before the body is read.
PredictBearer = Depends(_bearer)


def _matches(credentials: HTTPAuthorizationCredentials | None, token: str) -> bool:
    given = credentials.credentials if credentials else ""
    return secrets.compare_digest(given.encode(), token.encode())


def _unauthorized(name: str, headers: dict[str, str] | None = None) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        f"a valid bearer token ({name}) is required",
        headers={"WWW-Authenticate": "Bearer", **(headers or {})},
    )


async def require_admin(request: Request, settings: SettingsDep, credentials: BearerDep) -> None:
    if _matches(credentials, settings.api_token):
        return
    attempts: FailedAttempts = request.app.state.failed_admin_attempts
    client = client_host(request)
    wait_s = attempts.retry_after(client)
    attempts.add(client)
    if wait_s:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"too many wrong tokens: retry in {wait_s} s",
            headers={"Retry-After": str(wait_s)},
        )
    raise _unauthorized("DPE_API_TOKEN")


def check_predict_token(request: Request) -> None:
    """401 unless the request's bearer token is DPE_PREDICT_TOKEN (when it is set). Called by
    the /predict* routes before anything reads the body: a client without the token gets
    the 401 at once, and the connection closes rather than take in what it still sends."""
    token = request.app.state.settings.predict_token
    if not token:
        return
    scheme, given = get_authorization_scheme_param(request.headers.get("authorization"))
    credentials = HTTPAuthorizationCredentials(scheme=scheme, credentials=given)
    if scheme.lower() != "bearer" or not _matches(credentials, token):
        raise _unauthorized("DPE_PREDICT_TOKEN", {"Connection": "close"})


def client_host(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def client_identity(request: Request, settings: Settings) -> str:
    """Who asked, as the prediction log records it: `token:<first 12 hex of the token's
    sha256>` when /predict takes a token (never the token itself), else `host:<ip>`."""
    if settings.predict_token:
        token = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        return "token:" + hashlib.sha256(token.encode()).hexdigest()[:12]
    return f"host:{client_host(request)}"


AdminDep = Depends(require_admin)
