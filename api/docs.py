"""/docs (Swagger UI) and /redoc (ReDoc) served without internet.

FastAPI's own pages load their scripts, styles and fonts from a CDN: blank pages offline.
These are FastAPI's pages with local URLs; the assets are the copies packaged by
`fastapi-offline` (MIT), served under /docs-assets. ReDoc's script also draws Redocly's logo
from their CDN in its footer: the script is served with that address replaced by an empty
image (`data:,`), which ReDoc hides, so the page makes no request beyond this server.
"""

import functools
from importlib.resources import files

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

ASSETS_URL = "/docs-assets"
REDOC_JS = "redoc.standalone.js"
REDOC_CDN_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"


@functools.cache
def redoc_script() -> bytes:
    """fastapi-offline's ReDoc script without its one CDN address (read once)."""
    script = (files("fastapi_offline") / "static" / REDOC_JS).read_text(encoding="utf-8")
    return script.replace(REDOC_CDN_LOGO, "data:,").encode("utf-8")


def add_offline_docs(app: FastAPI) -> None:
    """Mount the assets and add /docs and /redoc; `app` was made with docs_url=None and
    redoc_url=None so that FastAPI's CDN pages are not there."""

    # Before the mount, which would otherwise answer this path with the file as packaged.
    @app.get(f"{ASSETS_URL}/{REDOC_JS}", include_in_schema=False)
    async def redoc_js() -> Response:
        return Response(redoc_script(), media_type="text/javascript")

    assets = files("fastapi_offline") / "static"
    app.mount(ASSETS_URL, StaticFiles(directory=str(assets)), name="docs-assets")
    title, openapi_url = app.title, app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{title} – Swagger UI",
            swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_URL}/favicon.png",
            # The public validator badge would call swagger.io.
            swagger_ui_parameters={"validatorUrl": None},
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=openapi_url,
            title=f"{title} – ReDoc",
            redoc_js_url=f"{ASSETS_URL}/{REDOC_JS}",
            redoc_favicon_url=f"{ASSETS_URL}/favicon.png",
            with_google_fonts=False,
        )
