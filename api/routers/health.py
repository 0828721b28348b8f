from fastapi import APIRouter, status
from fastapi.responses import JSONResponse

from api.deps import StateDep
from api.schemas import Health

router = APIRouter(tags=["health"])


@router.get(
    "/health",
    response_model=Health,
    responses={
        status.HTTP_503_SERVICE_UNAVAILABLE: {
            "model": Health,
            "description": "No champion loaded yet: the store is empty, unreachable or loading.",
            "content": {
                "application/json": {
                    "example": {
                        "status": "unavailable",
                        "detail": "no champion model in s3://models: train one and promote it "
                        "(python -m core promote RUN_ID)",
                    }
                }
            },
        }
    },
    summary="Is a champion served, and is the model store reachable?",
)
def health(state: StateDep):
    """`ok`: a champion is served and the store answers. `degraded`: a champion is served but
    the store cannot be read now (or the newest champion failed to load). 503: none loaded."""
    champion = state.champion
    if champion is None:
        body = Health(status="unavailable", detail=state.problem)
        return JSONResponse(body.model_dump(), status_code=status.HTTP_503_SERVICE_UNAVAILABLE)
    return Health(
        status="degraded" if state.problem else "ok",
        model_version=champion.model_version,
        loaded_at=champion.loaded_at.isoformat(),
        detail=state.problem,
    )
