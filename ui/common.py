"""What every page shares: page setup, the sidebar, status of data, champion and services.

Statuses are cached for a few seconds only (keyed on DPE_HOME / the store), so a page view
costs no more than a glance at the warehouse and the manifest; a service that does not
answer is a warning saying how to start it, never an error box.
"""

from urllib.parse import urlparse

import httpx
import pandas as pd
import streamlit as st

from core import monitoring, predict, registry, warehouse, workbench
from core.config import Settings, get_settings
from core.errors import DpeError
from core.evaluate import HEADLINE
from core.feature_sets import FEATURE_SETS

PROBE_TIMEOUT_S = 1.0
HEADLINE_METRICS = HEADLINE
HOME_PAGE = "Home.py"
PAGES = {
    "explore": "pages/1_Explore.py",
    "train": "pages/2_Train.py",
    "compare": "pages/3_Compare.py",
    "predict": "pages/4_Predict.py",
    "batch": "pages/5_Batch_predict.py",
}


def setup(title: str, icon: str) -> Settings:
    """Page config and sidebar; returns the settings."""
    st.set_page_config(page_title=f"{title} · DPE workbench", page_icon=icon, layout="wide")
    settings = get_settings()
    sidebar(settings)
    return settings


# --- status -----------------------------------------------------------------------------


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
    return registry.current_champion(_settings)


def champion_manifest(settings: Settings) -> tuple[dict | None, str | None]:
    """(the champion's manifest or None when none was promoted, problem)."""
    try:
        return _champion(settings.store_uri, settings), None
    except DpeError as error:
        return None, str(error)


@st.cache_resource(show_spinner=False)
def _prediction_logger(home: str, _settings: Settings) -> monitoring.PredictionLogger:
    return monitoring.PredictionLogger(_settings)


def prediction_sink(settings: Settings):
    """Where the pages' predictions are logged for monitoring (None when logging is off)."""
    if not settings.log_predictions:
        return None
    return _prediction_logger(str(settings.home.resolve()), settings).log


@st.cache_resource(max_entries=4, show_spinner="Loading the champion…")
def _load_champion(store_uri: str, key: tuple, _settings: Settings, _manifest: dict):
    return predict.load_champion(_settings, _manifest, sink=prediction_sink(_settings))


def load_champion(settings: Settings, manifest: dict):
    """(the loaded champion of this manifest, problem): loaded once per promotion."""
    try:
        key = predict.manifest_key(manifest)
        return _load_champion(settings.store_uri, key, settings, manifest), None
    except DpeError as error:
        return None, str(error)


# --- runs -------------------------------------------------------------------------------


@st.cache_data(ttl=30, show_spinner="Reading the runs from MLflow…")
def _runs(tracking_uri: str, experiment: str, _settings: Settings) -> pd.DataFrame:
    return registry.list_runs(_settings)


def list_runs(settings: Settings, experiment: str | None = None):
    """(the experiment's runs, best macro-F1 first; problem)."""
    if experiment and experiment != settings.experiment_name:
        settings = settings.model_copy(update={"experiment_name": experiment})
    try:
        return _runs(settings.tracking_uri, settings.experiment_name, settings), None
    except DpeError as error:
        return pd.DataFrame(columns=list(registry.RUN_COLUMNS)), str(error)


@st.cache_data(ttl=60, show_spinner=False)
def _experiments(tracking_uri: str, _settings: Settings) -> list[str]:
    return workbench.experiments(_settings)


def experiments(settings: Settings) -> list[str]:
    try:
        return _experiments(settings.tracking_uri, settings)
    except DpeError:
        return [settings.experiment_name]


@st.cache_data(max_entries=32, show_spinner="Reading the run from MLflow…")
def _run_view(tracking_uri: str, run_id: str, _settings: Settings) -> dict:
    return workbench.run_view(_settings, run_id)


def run_view(settings: Settings, run_id: str) -> dict:
    return _run_view(settings.tracking_uri, run_id, settings)


@st.cache_data(max_entries=32, show_spinner="Comparing the runs…")
def _compare(tracking_uri: str, run_ids: tuple[str, ...], _settings: Settings) -> dict:
    return workbench.compare_runs(_settings, list(run_ids))


def compare_runs(settings: Settings, run_ids) -> dict:
    return _compare(settings.tracking_uri, tuple(run_ids), settings)


def clear_runs() -> None:
    """After a training run or a promotion."""
    _runs.clear()
    _experiments.clear()


def runs_table(runs: pd.DataFrame, champion_run: str | None) -> pd.DataFrame:
    """The runs as the Compare page lists them."""
    table = pd.DataFrame(
        {
            "": ["★" if run == champion_run else "" for run in runs["run_id"]],
            "run": runs["run_id"].str[:8],
            "started (UTC)": pd.to_datetime(runs["start_time"]).dt.strftime("%Y-%m-%d %H:%M"),
            "model": runs["model"],
            "features": runs["features"],
            "search": runs["search"],
            "dataset": runs["dataset_version"].astype(str).str[:12],
        }
    )
    for name in (*HEADLINE, "monotonicity_violations", "baseline_macro_f1"):
        # None where a metric doesn't apply (monotonicity of a building-only run)
        table[name.replace("_", " ")] = pd.to_numeric(runs[name], errors="coerce").round(3)
    table["baseline"] = runs["baseline"]
    return table


def clear_status() -> None:
    """After an ingest or a promotion: the next look is fresh."""
    _dataset_status.clear()
    _champion.clear()


def mlflow_ui_url(settings: Settings) -> str:
    """Where the MLflow UI is: DPE_MLFLOW_UI_URL, the tracking server, or the local default."""
    url = settings.public_mlflow_url
    if urlparse(url).scheme in ("http", "https"):
        return url.rstrip("/")
    return f"http://{settings.host}:{settings.mlflow_port}"


def api_docs_url(settings: Settings) -> str:
    return (settings.api_public_url or settings.public_api_url).rstrip("/") + "/docs"


def run_url(settings: Settings, experiment_id: str | None, run_id: str) -> str:
    """A run's page in the MLflow UI."""
    return f"{mlflow_ui_url(settings)}/#/experiments/{experiment_id or 0}/runs/{run_id}"


@st.cache_data(ttl=10, show_spinner=False)
def probe(url: str) -> int | None:
    """HTTP status of a GET on `url`, or None when nothing answers."""
    try:
        return httpx.get(url, timeout=PROBE_TIMEOUT_S).status_code
    except httpx.HTTPError:
        return None


def mlflow_status(settings: Settings) -> tuple[bool, str]:
    """(reachable, what to say: where it is, or how to start it).

    With an MLflow server as tracking URI, that server is what is probed (the UI is the same
    server; its public URL, DPE_MLFLOW_UI_URL, may only make sense to the browser, e.g.
    from inside a container). With a local file, the UI's own URL is.
    """
    url = mlflow_ui_url(settings)
    tracking = settings.tracking_uri
    server = tracking if urlparse(tracking).scheme in ("http", "https") else url
    if probe(f"{server.rstrip('/')}/health") == 200:
        return True, f"MLflow UI at {url}"
    if server == tracking:
        backend = f"sqlite:///{settings.home.resolve()}/mlflow/mlflow.db"
        alone = (
            f"mlflow server --host 127.0.0.1 --port {settings.mlflow_port} --workers 1 "
            f"--backend-store-uri {backend}"
        )
        return False, (
            f"**MLflow server** does not answer at {tracking}: training and comparing runs need "
            f"it. Start everything with `make run`, or the server alone with `{alone}`."
        )
    alone = (
        f"mlflow ui --host 127.0.0.1 --port {settings.mlflow_port} --backend-store-uri {tracking}"
    )
    return False, (
        f"**MLflow UI** does not answer at {url} (runs are still tracked in `{tracking}`). "
        f"Start everything with `make run`, or the UI alone with `{alone}`."
    )


def api_status(settings: Settings) -> tuple[bool, str]:
    url = settings.public_api_url.rstrip("/")
    code = probe(f"{url}/health")
    if code == 200:
        return True, f"API serving the champion at {url}"
    if code == 503:
        return True, f"API at {url} is up, with no champion yet"
    return False, (
        f"**API** does not answer at {url}. Start everything with `make run`, or the API alone "
        f"with `uvicorn api.main:app --host 127.0.0.1 --port {settings.api_port}`. "
        "The workbench's own pages predict without it."
    )


# --- sidebar ----------------------------------------------------------------------------


def short(text: str | None, n: int = 12) -> str:
    return "—" if not text else str(text)[:n]


def marker(ok: bool) -> str:
    return ":green[:material/check_circle:]" if ok else ":orange[:material/error:]"


def sidebar(settings: Settings) -> None:
    status, problem = dataset_status(settings)
    manifest, champion_problem = champion_manifest(settings)
    with st.sidebar:
        st.markdown("#### Dataset")
        if status:
            st.markdown(
                f"version `{short(status['dataset_version'])}`  \n"
                f"{status['rows']:,} records · {status['labelled']:,} labelled"
            )
        elif problem:
            st.warning(problem, icon=":material/hourglass_empty:")
        else:
            st.caption("No data yet: ingest on the Home page.")
        st.markdown("#### Champion")
        if manifest:
            macro_f1 = (manifest.get("metrics") or {}).get("macro_f1")
            score = f" · macro-F1 {macro_f1:.3f}" if isinstance(macro_f1, int | float) else ""
            st.markdown(
                f"{manifest.get('registered_model', 'dpe')} **v{manifest.get('model_version')}**"
                f"{score}  \nrun `{short(manifest.get('run_id'), 8)}`"
            )
        elif champion_problem:
            st.warning(champion_problem, icon=":material/warning:")
        else:
            st.caption("No champion yet: train, compare, promote.")
        st.markdown("#### Services")
        mlflow_ok, _ = mlflow_status(settings)
        api_ok, _ = api_status(settings)
        st.markdown(
            f"{marker(mlflow_ok)} [MLflow UI]({mlflow_ui_url(settings)})  \n"
            f"{marker(api_ok)} [API docs]({api_docs_url(settings)})"
        )
        if not (mlflow_ok and api_ok):
            st.caption(f"{marker(False)} not answering: see Home for how to start it.")


# --- shared bits of pages --------------------------------------------------------------


def no_data(what: str = "this page") -> None:
    st.info(
        f"There is no data yet, so {what} has nothing to show. Ingest the ADEME data or "
        "upload an ADEME CSV export on the Home page.",
        icon=":material/inbox:",
    )
    st.page_link(HOME_PAGE, label="Go to Home to get data", icon=":material/home:")


def no_champion(what: str = "this page") -> None:
    st.info(
        f"No model has been promoted to champion yet, so {what} cannot predict. Train a model, "
        "then promote the best run on the Compare page.",
        icon=":material/trophy:",
    )
    st.page_link(PAGES["train"], label="Train a model", icon=":material/science:")
    st.page_link(
        PAGES["compare"], label="Compare runs and promote one", icon=":material/compare_arrows:"
    )


def leakage_note(feature_set: str) -> str | None:
    if FEATURE_SETS[feature_set].leaks_label:
        return (
            "`with-consumption` includes the primary consumption, and by regulation the label "
            "is a threshold of it on the building's official scale: its scores measure how well "
            "a model rediscovers the scales, not how well it predicts a building's label "
            "before a diagnostic (use `building-only` for that)."
        )
    return None


def feature_set_help() -> str:
    return " · ".join(f"`{name}`: {len(fs.fields)} fields" for name, fs in FEATURE_SETS.items())
