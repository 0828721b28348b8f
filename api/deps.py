"""Dependencies, each declared once: the settings, the serving state, the champion a request
uses, and the admin token check.

They are `async def` although they do no I/O: FastAPI runs a plain `def` dependency in its
thread pool, and three hops there cost a quarter of a one-record prediction's latency.
"""

import secrets
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.state import ServingState
from core.config import Settings
from core.predict import Champion


async def get_app_settings(request: Request) -> Settings:
    """The app's one Settings: `core.config.get_settings()`, or those `create_app` was given."""
    return request.app.state.settings


SettingsDep = Annotated[Settings, Depends(get_app_settings)]


async def get_state(request: Request) -> ServingState:
    return request.app.state.serving


StateDep = Annotated[ServingState, Depends(get_state)]


async def get_champion(state: StateDep) -> Champion:
    """The champion this request uses to the end, even if a newer one is swapped in meanwhile."""
    champion = state.champion
    if champion is None:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, f"no model loaded: {state.problem}"
        )
    return champion


ChampionDep = Annotated[Champion, Depends(get_champion)]

_bearer = HTTPBearer(auto_error=False, description="DPE_API_TOKEN")


async def require_token(
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    given = credentials.credentials if credentials else ""
    if not secrets.compare_digest(given.encode(), settings.api_token.encode()):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "a valid bearer token (DPE_API_TOKEN) is required",
            headers={"WWW-Authenticate": "Bearer"},
        )


TokenDep = Depends(require_token)
