"""Status of what the workbench depends on: the dataset, the champion, MLflow and the API.

Statuses are cached for a few seconds only (keyed on DPE_HOME / the store), so a page view
costs no more than a glance at the warehouse and the manifest; a service that does not
answer is a warning saying how to start it, never an error box. The champion is read
through core.tracking.champion_store only.
"""

from dataclasses import dataclass
from urllib.parse import urlparse

import httpx
import streamlit as st

from core.config import Settings
from core.data import warehouse
from core.errors import DpeError
from core.storage import Store
from core.tracking import champion_store
from ui.links import mlflow_ui_url

PROBE_TIMEOUT_S = 1.0


@st.cache_data(ttl=3, show_spinner=False)
def _dataset_status(duckdb_path: str, _settings: Settings) -> dict | None:
    return warehouse.status(_settings)


def dataset_status(settings: Settings) -> tuple[dict | None, str | None]:
    """(status of the current dataset version or None when there is no data, problem)."""
    try:
        return _dataset_status(str(settings.duckdb_path.resolve()), settings), None
    except DpeError as error:
        return None, str(error)


@st.cache_data(ttl=3, show_spinner=False)
def _champion(store_uri: str, _settings: Settings) -> dict | None:
    manifest = champion_store.current(Store(_settings))
    return None if manifest is None else manifest.to_dict()


def champion_manifest(settings: Settings) -> tuple[dict | None, str | None]:
    """(the champion's manifest as JSON data, or None when none was promoted; problem)."""
    try:
        return _champion(settings.store_uri, settings), None
    except DpeError as error:
        return None, str(error)


def clear_status() -> None:
    """After an ingest, a promotion or a pipeline pass: the next look is fresh."""
    _dataset_status.clear()
    _champion.clear()
    _api_health.clear()


@st.cache_data(ttl=10, show_spinner=False)
def probe(url: str) -> int | None:
    """HTTP status of a GET on `url`, or None when nothing answers."""
    try:
        return httpx.get(url, timeout=PROBE_TIMEOUT_S).status_code
    except httpx.HTTPError:
        return None


@dataclass(frozen=True)
class Service:
    """A service as the workbench sees it: `up` answers, `ready` does its job."""

    up: bool
    ready: bool
    state: str  # a few words for a card or the sidebar: "online", "up, no champion", "offline"
    text: str  # where it is, or how to start it


def mlflow_status(settings: Settings) -> Service:
    """With an MLflow server as tracking URI, that server is what is probed (the UI is the
    same server; its public URL, DPE_MLFLOW_UI_URL, may only make sense to the browser, e.g.
    from inside a container). With a local file, the UI's own URL is."""
    url = mlflow_ui_url(settings)
    tracking = settings.tracking_uri
    server = tracking if urlparse(tracking).scheme in ("http", "https") else url
    if probe(f"{server.rstrip('/')}/health") == 200:
        return Service(True, True, "online", f"MLflow UI at {url}")
    if server == tracking:
        backend = f"sqlite:///{settings.home.resolve()}/mlflow/mlflow.db"
        alone = (
            f"mlflow server --host 127.0.0.1 --port {settings.mlflow_port} --workers 1 "
            f"--backend-store-uri {backend}"
        )
        text = (
            f"**MLflow server** does not answer at {tracking}: training and comparing runs need "
            f"it. Start everything with `make run`, or the server alone with `{alone}`."
        )
    else:
        alone = (
            f"mlflow ui --host 127.0.0.1 --port {settings.mlflow_port} "
            f"--backend-store-uri {tracking}"
        )
        text = (
            f"**MLflow UI** does not answer at {url} (runs are still tracked in `{tracking}`). "
            f"Start everything with `make run`, or the UI alone with `{alone}`."
        )
    return Service(False, False, "offline", text)


@st.cache_data(ttl=5, show_spinner=False)
def _api_health(url: str) -> tuple[int | None, str | None]:
    """(HTTP status of the API's /health, the model version it serves), (None, None) when
    nothing answers."""
    try:
        response = httpx.get(f"{url}/health", timeout=PROBE_TIMEOUT_S)
    except httpx.HTTPError:
        return None, None
    try:
        served = response.json().get("model_version")
    except ValueError:  # not the DPE API's JSON
        served = None
    return response.status_code, None if served is None else str(served)


def api_status(settings: Settings) -> Service:
    """The API's /health (200 serves a champion, 503 is up without one), read against the
    champion in the store: right after a promotion the API is still loading it (it looks for
    a new one every DPE_RELOAD_INTERVAL_S), which is not "no champion"."""
    url = settings.public_api_url.rstrip("/")
    code, served = _api_health(url)
    manifest, _ = champion_manifest(settings)
    promoted = None if manifest is None else str(manifest.get("model_version"))
    loading = (
        f"API at {url} is loading champion v{promoted} (it looks for a new one every "
        f"{settings.reload_interval_s:g} s)."
    )
    if code == 200 and promoted not in (None, served):
        return Service(True, True, f"serving v{served}, loading v{promoted}", loading)
    if code == 200:
        return Service(True, True, "online", f"API serving the champion at {url}")
    if code == 503 and promoted is not None:
        return Service(True, False, f"up, loading champion v{promoted}", loading)
    if code == 503:
        return Service(
            True,
            False,
            "up, no champion",
            f"API at {url} is up, with no champion to serve yet: promote a run on Compare.",
        )
    return Service(
        False,
        False,
        "offline",
        f"**API** does not answer at {url}. Start everything with `make run`, or the API alone "
        f"with `uvicorn api.main:app --host 127.0.0.1 --port {settings.api_port}`. "
        "The workbench's own pages predict without it.",
    )
