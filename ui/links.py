"""Where the other surfaces are: the MLflow UI (deep links) and the API docs.

MLflow 3.x opens on its GenAI home and an experiment on "Traces": the links go to the
training-runs view, a run, and the registered model's versions page instead (the UI's
hash routes `/experiments/:id/runs`, `/experiments/:id/runs/:run`, `/models/:name`).
"""

from urllib.parse import quote, urlparse

from core.config import Settings


def mlflow_ui_url(settings: Settings) -> str:
    """Where the MLflow UI is: DPE_MLFLOW_UI_URL, the tracking server, or the local default."""
    url = settings.public_mlflow_url
    if urlparse(url).scheme in ("http", "https"):
        return url.rstrip("/")
    return f"http://{settings.host}:{settings.mlflow_port}"


def experiment_runs_url(settings: Settings, experiment_id: str | None) -> str:
    """The experiment's training runs (not its traces)."""
    if not experiment_id:
        return f"{mlflow_ui_url(settings)}/#/experiments"
    return f"{mlflow_ui_url(settings)}/#/experiments/{experiment_id}/runs"


def run_url(settings: Settings, experiment_id: str | None, run_id: str) -> str:
    """A run's page in the MLflow UI."""
    return f"{mlflow_ui_url(settings)}/#/experiments/{experiment_id or 0}/runs/{run_id}"


def model_versions_url(settings: Settings, model_name: str | None = None) -> str:
    """The registered model's page: its versions and the `champion` alias."""
    name = quote(model_name or settings.registered_model_name, safe="")
    return f"{mlflow_ui_url(settings)}/#/models/{name}"


def api_docs_url(settings: Settings) -> str:
    return (settings.api_public_url or settings.public_api_url).rstrip("/") + "/docs"
