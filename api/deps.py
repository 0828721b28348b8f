"""Dependencies, each declared once: the settings, the serving state and the champion a
request uses (the token checks are in api.auth).

They are `async def` although they do no I/O: FastAPI runs a plain `def` dependency in its
thread pool, and three hops there cost a quarter of a one-record prediction's latency.
"""

from typing import Annotated

from fastapi import Depends, HTTPException, Request, status

from api.state import ServingState
from core.config import Settings
from core.serving.champion import Champion


async def get_app_settings(request: Request) -> Settings:
    """The app's one Settings: `core.config.get_settings()`, or those `create_app` was given."""
    return request.app.state.settings


SettingsDep = Annotated[Settings, Depends(get_app_settings)]


async def get_state(request: Request) -> ServingState:
    return request.app.state.serving


StateDep = Annotated[ServingState, Depends(get_state)]


async def get_champion(request: Request, state: StateDep) -> Champion:
    """The champion this request uses to the end, even if a newer one is swapped in meanwhile."""
    champion = state.champion
    if champion is None:
        count_refusal(request, "no_model")
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, f"no model loaded: {state.problem}"
        )
    return champion


ChampionDep = Annotated[Champion, Depends(get_champion)]


def count_refusal(request: Request, reason: str) -> None:
    """Count a refused prediction request in dpe_prediction_errors_total (metrics on)."""
    metrics = request.app.state.metrics
    if metrics is not None:
        metrics.refused(reason)
