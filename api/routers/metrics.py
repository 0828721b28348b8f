"""GET /metrics: Prometheus text (api.metrics), added by `create_app` unless DPE_METRICS=false."""

from fastapi import APIRouter, Request
from fastapi.responses import Response

from api.deps import StateDep

router = APIRouter(tags=["operations"])


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
    summary="Prometheus metrics: requests, predictions, errors, the champion served",
)
async def metrics(request: Request, state: StateDep) -> Response:
    metrics = request.app.state.metrics
    if state.champion is not None:  # read at scrape time: nothing to do on a swap
        metrics.champion(state.champion.manifest, state.load_seconds)
    metrics.champion_problem.set(1 if state.problem else 0)
    body, content_type = metrics.exposition()
    return Response(body, media_type=content_type)
