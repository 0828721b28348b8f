import asyncio

from fastapi import APIRouter, HTTPException, status

from api.auth import AdminDep
from api.deps import StateDep
from api.schemas import Problem, Reload

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[AdminDep])


@router.post(
    "/reload",
    response_model=Reload,
    responses={
        status.HTTP_401_UNAUTHORIZED: {
            "model": Problem,
            "description": "`unauthorized`: missing or wrong token",
        },
        status.HTTP_429_TOO_MANY_REQUESTS: {
            "model": Problem,
            "description": "`too_many_requests`: too many wrong tokens from this client: wait "
            "Retry-After seconds",
            "headers": {"Retry-After": {"schema": {"type": "integer"}}},
        },
        status.HTTP_503_SERVICE_UNAVAILABLE: {
            "model": Problem,
            "description": "`unavailable`: no model loaded",
        },
    },
    summary="Load the newest champion now (bearer DPE_API_TOKEN)",
)
async def reload(state: StateDep) -> Reload:
    """Re-read the manifest now rather than at the next watch interval."""
    swapped = await asyncio.to_thread(state.refresh)
    champion = state.champion
    if champion is None:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, f"no model loaded: {state.problem}"
        )
    return Reload(reloaded=swapped, model_version=champion.model_version, detail=state.problem)
