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


@router.get("/livez", summary="Liveness: the process serves (always 200 while it answers)")
async def livez() -> dict:
    """For a liveness probe: 200 whenever the process answers, champion or not, so that a
    replica waiting for a first promotion is not restarted in a loop."""
    return {"status": "alive"}


@router.get(
    "/readyz",
    responses={
        status.HTTP_503_SERVICE_UNAVAILABLE: {
            "description": "No verified champion served: the reason is in `detail`.",
            "content": {
                "application/json": {
                    "example": {"status": "not ready", "detail": "loading the champion model"}
                }
            },
        }
    },
    summary="Readiness: this replica serves a verified champion (200), else 503 and why",
)
async def readyz(state: StateDep):
    """For a readiness probe: 200 once this replica serves a champion loaded with its
    checksums verified (not the quick start's unchecked one), whatever happens to the store
    since: the champion in memory still answers, and every replica sees the same store, so
    an outage there must not take them all out of the Service at once. Store trouble is
    `/health`'s `degraded` and the metric `dpe_champion_problem`. 503 with the reason until
    then."""
    champion = state.champion
    if champion is None or champion.light:
        detail = state.problem or "the champion's checks are still running"
        return JSONResponse(
            {"status": "not ready", "detail": detail},
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        )
    return {"status": "ready", "model_version": champion.model_version}
