from typing import Any

from fastapi import APIRouter, status

from api.deps import ChampionDep
from api.schemas import MANIFEST_EXAMPLE, Problem

router = APIRouter(tags=["model"])


@router.get(
    "/model",
    responses={
        status.HTTP_200_OK: {"content": {"application/json": {"example": MANIFEST_EXAMPLE}}},
        status.HTTP_503_SERVICE_UNAVAILABLE: {
            "model": Problem,
            "description": "`unavailable`: no model loaded",
        },
    },
    summary="The served champion's manifest",
)
def model(champion: ChampionDep) -> dict[str, Any]:
    """Name and version, run id, model URI, dataset version, metrics, and the input schema:
    each field's type, allowed categories (null: any), bounds and unit."""
    return champion.manifest.to_dict()
