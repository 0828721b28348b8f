"""GET /: what this is and where to go, for whoever opens the URL `make run` prints."""

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

router = APIRouter(tags=["index"])

LINKS = {
    "docs": "/docs",
    "redoc": "/redoc",
    "openapi": "/openapi.json",
    "health": "/health",
    "model": "/model",
    "predict": "/predict",
}


class Index(BaseModel):
    name: str = Field(description="the API's title")
    version: str = Field(description="the API's version (the champion's is in /health)")
    links: dict[str, str] = Field(description="where to go: docs, health, the model, predict")


@router.get("/", response_model=Index, summary="What this API is, with links to its routes")
def index(request: Request) -> Index:
    """Name and version, and links (paths on this server) to the interactive docs
    (`/docs`, `/redoc`), the health probe, the champion's manifest and the predict route."""
    app = request.app
    return Index(name=app.title, version=app.version, links=LINKS)
