"""Runs, comparison, and promotion of a champion to the model store.

`promote(settings, run_id)` registers a run's model as `Settings.registered_model_name`,
sets the registry alias `champion` (the champion's truth), then exports its MLflow model
directory to the store through `core.tracking.champion_store.publish` (files first, manifest last).

What is accepted (promotion, and `core.tracking.sync` when the alias moves): a version of the
configured registered model, registered from the model its source run logged, that run in
the project's experiment with the training tags (`TRAINING_TAGS`, `feature_set` the model's
own), and a model file that `core.tracking.model_format` loads: skops, trusted types only,
its trees checked, a pipeline of this project's. Anything else is refused (Conflict, with
the reason) before the alias or the store change. Anyone who can write to MLflow can make
a run that passes the first checks; the file format is what keeps their code from running.
"""

import logging
import tempfile
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TypedDict
from urllib.parse import urlparse

import httpx
import mlflow
import pandas as pd
import requests
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from core.config import Settings
from core.data.feature_sets import FEATURE_SETS
from core.data.schema import LABELS
from core.errors import Conflict, DpeError, InvalidInput, NotFound, Unavailable, unknown_host
from core.storage import Store
from core.tracking.champion_store import MANIFEST_PATH, Manifest, input_schema, publish
from core.tracking.headline import HEADLINE
from core.tracking.model_format import PICKLE_FILE, SKOPS_FILE, load_model

log = logging.getLogger(__name__)

CHAMPION_ALIAS = "champion"
# Tags `core.modeling.train` gives every training run: a run without them is not promoted.
TRAINING_TAGS = ("model_family", "feature_set", "dataset_version")
RUN_COLUMNS = (
    "run_id",
    "start_time",
    "model",
    "features",
    "search",
    "dataset_version",
    "leaking",
    *HEADLINE,
    "monotonicity_violations",  # with-consumption runs only
    "baseline",
    "baseline_accuracy",
    "baseline_macro_f1",
    "status",
)


# --- MLflow connection ---------------------------------------------------------------------


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def connect(settings: Settings) -> MlflowClient:
    """Point MLflow at the settings' tracking server (fluent API included); fail fast when
    an HTTP server does not answer, rather than after MLflow's minutes of retries."""
    uri = settings.tracking_uri
    if _is_http(uri):
        try:
            httpx.get(f"{uri.rstrip('/')}/health", timeout=settings.http_timeout_s)
        except httpx.HTTPError as error:
            if unknown_host(error):
                raise InvalidInput(
                    f"MLflow server {uri}: its host name does not resolve: check "
                    "MLFLOW_TRACKING_URI"
                ) from error
            raise Unavailable(
                f"MLflow server {uri} unreachable ({_one_line(str(error))}): start it (make run) "
                "or set MLFLOW_TRACKING_URI"
            ) from error
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _is_http(uri: str) -> bool:
    return urlparse(uri).scheme in ("http", "https")


# MLflow's error codes, by the kind of DpeError they are (any other: DpeError).
_MLFLOW_KINDS: dict[str, type[DpeError]] = {
    "RESOURCE_DOES_NOT_EXIST": NotFound,
    "NOT_FOUND": NotFound,
    "RESOURCE_ALREADY_EXISTS": Conflict,
    "ALREADY_EXISTS": Conflict,
    "RESOURCE_CONFLICT": Conflict,
    "ABORTED": Conflict,
    "INVALID_PARAMETER_VALUE": InvalidInput,
    "BAD_REQUEST": InvalidInput,
    "TEMPORARILY_UNAVAILABLE": Unavailable,
    "DEADLINE_EXCEEDED": Unavailable,
    "REQUEST_LIMIT_EXCEEDED": Unavailable,
    "RESOURCE_EXHAUSTED": Unavailable,
}


@contextmanager
def mlflow_errors(settings: Settings):
    """MLflow failures as one-line DpeErrors naming the tracking server, of the kind its
    error code says; a request that got no answer (MLflow wraps the network error) is
    Unavailable."""
    try:
        yield
    except MlflowException as error:
        message = f"MLflow ({settings.tracking_uri}): {_one_line(error.message)}"
        raise _mlflow_kind(error)(message) from error


def _mlflow_kind(error: MlflowException) -> type[DpeError]:
    if unknown_host(error):
        return InvalidInput
    if isinstance(error.__context__, requests.RequestException):  # no answer at all
        return Unavailable
    return _MLFLOW_KINDS.get(error.error_code, DpeError)


def experiment_id(settings: Settings, client: MlflowClient) -> str:
    """The experiment's id, created if missing with an explicit artifact location.

    A local backend (sqlite:///...) keeps artifacts under DPE_HOME; an HTTP server
    chooses its own (`mlflow-artifacts:/...` when it serves artifacts, or its S3 root).
    """
    experiment = client.get_experiment_by_name(settings.experiment_name)
    if experiment is not None:
        if experiment.lifecycle_stage == "deleted":
            client.restore_experiment(experiment.experiment_id)
        return experiment.experiment_id
    location = None
    if not _is_http(settings.tracking_uri):
        settings.mlflow_artifacts_dir.mkdir(parents=True, exist_ok=True)
        location = settings.mlflow_artifacts_dir.resolve().as_uri()
    try:
        return client.create_experiment(settings.experiment_name, artifact_location=location)
    except MlflowException as error:
        if error.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
        # Another training (CLI, workbench) created it in the meantime.
        existing = client.get_experiment_by_name(settings.experiment_name)
        if existing is None:
            raise
        return existing.experiment_id


# --- Runs ------------------------------------------------------------------------------------


def list_runs(
    settings: Settings, feature_set: str | None = None, dataset_version: str | None = None
) -> pd.DataFrame:
    """The experiment's training runs, best macro-F1 first; one row each (RUN_COLUMNS)."""
    client = connect(settings)
    with mlflow_errors(settings):
        experiment = client.get_experiment_by_name(settings.experiment_name)
        if experiment is None:
            return pd.DataFrame(columns=list(RUN_COLUMNS))
        filters = ["tags.model_family != ''"]  # runs this module's train() made
        if feature_set:
            filters.append(f"tags.feature_set = '{feature_set}'")
        if dataset_version:
            filters.append(f"tags.dataset_version = '{dataset_version}'")
        runs = client.search_runs(
            [experiment.experiment_id],
            filter_string=" and ".join(filters),
            order_by=["metrics.macro_f1 DESC", "attributes.start_time DESC"],
            max_results=1000,
        )
    trained = [run for run in runs if run.data.tags.get("kind") != "backtest"]  # no model
    return pd.DataFrame([_run_row(run) for run in trained], columns=list(RUN_COLUMNS))


def _run_row(run) -> dict:
    tags, metrics = run.data.tags, run.data.metrics
    feature_set = FEATURE_SETS.get(tags.get("feature_set", ""))
    baseline = feature_set.baseline if feature_set else "majority"
    row = {
        "run_id": run.info.run_id,
        "start_time": pd.Timestamp(run.info.start_time, unit="ms", tz="UTC"),
        "model": tags.get("model_family"),
        "features": tags.get("feature_set"),
        "search": run.data.params.get("search"),
        "dataset_version": tags.get("dataset_version"),
        "leaking": tags.get("label_leaking") == "true",
        "baseline": baseline,
        "baseline_accuracy": metrics.get(f"baseline_{baseline}_accuracy"),
        "baseline_macro_f1": metrics.get(f"baseline_{baseline}_macro_f1"),
        "status": run.info.status,
    }
    row.update({name: metrics.get(name) for name in (*HEADLINE, "monotonicity_violations")})
    return row


def _get_run(settings: Settings, client: MlflowClient, run_id: str):
    try:
        return client.get_run(run_id)
    except MlflowException as error:
        if error.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            raise NotFound(f"unknown run id {run_id!r} in {settings.tracking_uri}") from error
        raise


def _model_id(run) -> str:
    outputs = run.outputs.model_outputs if run.outputs else []
    if not outputs:
        raise Conflict(f"run {run.info.run_id} has no logged model: nothing to promote")
    return outputs[0].model_id


def run_details(settings: Settings, run_id: str) -> dict:
    """One run: params, headline and per-label metrics, baselines, tags, artifact URIs."""
    client = connect(settings)
    with mlflow_errors(settings):
        run = _get_run(settings, client, run_id)
        artifacts = [item.path for item in client.list_artifacts(run_id)]
    metrics, tags = run.data.metrics, run.data.tags
    per_class = {
        label: {
            kind: metrics[f"{kind}_{label}"] for kind in ("precision", "recall", "f1", "support")
        }
        for label in LABELS
        if f"f1_{label}" in metrics
    }
    outputs = run.outputs.model_outputs if run.outputs else []
    return {
        "run_id": run_id,
        "status": run.info.status,
        "start_time": _iso(run.info.start_time),
        "end_time": _iso(run.info.end_time),
        "model": tags.get("model_family"),
        "features": tags.get("feature_set"),
        "dataset_version": tags.get("dataset_version"),
        "leaking": tags.get("label_leaking") == "true",
        "params": dict(run.data.params),
        "metrics": {
            name: metrics[name]
            for name in (*HEADLINE, "ece", "monotonicity_violations")
            if name in metrics
        },
        "per_class": per_class,
        "baseline": {
            name: value for name, value in metrics.items() if name.startswith("baseline_")
        },
        "tags": {name: value for name, value in tags.items() if not name.startswith("mlflow.")},
        "artifact_uri": run.info.artifact_uri,
        "artifacts": {path: f"{run.info.artifact_uri}/{path}" for path in artifacts},
        "model_uri": f"models:/{outputs[0].model_id}" if outputs else None,
    }


def _iso(millis: int | None) -> str | None:
    return None if millis is None else datetime.fromtimestamp(millis / 1000, UTC).isoformat()


# --- Promotion -----------------------------------------------------------------------------


class Promotion(TypedDict):
    """What `promote` returns (the CLI's JSON)."""

    model_version: str
    run_id: str
    uri: str
    alias: str
    manifest: str


def promote(settings: Settings, run_id: str) -> Promotion:
    """Register the run's model, alias it `champion`, export it to the store (manifest last).

    The run and its model are checked first (see the module's doc): a refused one changes
    neither the registry nor the store. The alias is the champion's truth
    (`core.tracking.sync` makes the manifest follow it): it moves once the model is checked,
    and moves back when the store cannot take the export, so a promotion that fails half-way
    leaves alias and manifest agreeing. Promoting a run already registered reuses its
    version: promoting an older champion again switches the manifest back to it.
    """
    client = connect(settings)
    name = settings.registered_model_name
    store = Store(settings)
    store.exists(MANIFEST_PATH)  # an unreachable store fails here, before the registry changes
    with mlflow_errors(settings):
        run = _get_run(settings, client, run_id)
        _check_run(settings, client, run)
        model_id = _model_id(run)
        with tempfile.TemporaryDirectory() as tmp:
            checked = _checked_model(run, _download_model(f"models:/{model_id}", tmp))
        version = _registered_version(client, name, run_id, model_id)
        log.info("promote: run %s is %s version %s", run_id, name, version)
        previous = champion_version(client, name)
        client.set_registered_model_alias(name, CHAMPION_ALIAS, version)
        try:
            _export(settings, store, run, version, checked)
        except Exception:
            _restore_alias(client, name, previous)
            raise
    return Promotion(
        model_version=version,
        run_id=run_id,
        uri=f"models:/{name}/{version}",
        alias=f"models:/{name}@{CHAMPION_ALIAS}",
        manifest=store.uri(MANIFEST_PATH),
    )


def champion_version(client: MlflowClient, name: str) -> str | None:
    """The registry version the alias `champion` points at; None when there is none."""
    try:
        return str(client.get_model_version_by_alias(name, CHAMPION_ALIAS).version)
    except MlflowException as error:
        # No such registered model, or a model without the alias.
        if error.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        raise


def _restore_alias(client: MlflowClient, name: str, previous: str | None) -> None:
    """Put the alias back where it was (the export failed); the export's error follows."""
    log.warning("promote: the store did not take the export, champion alias back to %s", previous)
    if previous is None:
        client.delete_registered_model_alias(name, CHAMPION_ALIAS)
    else:
        client.set_registered_model_alias(name, CHAMPION_ALIAS, previous)


def export_version(
    settings: Settings, client: MlflowClient, store: Store, version: str
) -> Manifest:
    """Export registry version `version` to the store, manifest last (what `sync` publishes);
    Conflict, and the store unchanged, when the version or its model is refused."""
    name = settings.registered_model_name
    with mlflow_errors(settings):
        found = client.get_model_version(name, version)
        if found.run_id is None:
            raise Conflict(f"{name} version {version} comes from no run: refusing it")
        run = _get_run(settings, client, found.run_id)
        _check_run(settings, client, run)
        logged = {output.model_id for output in (run.outputs.model_outputs if run.outputs else [])}
        if _source_model(found) not in logged:
            raise Conflict(
                f"{name} version {version} is not the model its run {found.run_id} logged: "
                "refusing it"
            )
        with tempfile.TemporaryDirectory() as tmp:
            checked = _checked_model(run, _download_model(f"models:/{name}/{version}", tmp))
    return _export(settings, store, run, version, checked)


def _source_model(version) -> str | None:
    """The id of the logged model a registry version was made from (its source is
    `models:/<model_id>` in MLflow 3; the server does not always fill `model_id`)."""
    if version.model_id:
        return version.model_id
    found = (version.source or "").removeprefix("models:/")
    return found if found != version.source and "/" not in found else None


def _check_run(settings: Settings, client: MlflowClient, run) -> None:
    """Conflict unless `run` is a training run of this project: in its experiment, with the
    training tags."""
    run_id = run.info.run_id
    experiment = client.get_experiment_by_name(settings.experiment_name)
    if experiment is None or run.info.experiment_id != experiment.experiment_id:
        raise Conflict(
            f"run {run_id} is not in the experiment {settings.experiment_name!r}: only this "
            "project's training runs are promoted"
        )
    missing = [tag for tag in TRAINING_TAGS if not run.data.tags.get(tag)]
    if missing:
        raise Conflict(
            f"run {run_id} lacks the training tags {', '.join(missing)}: it was not made by "
            "`dpe train`, refusing it"
        )


def _download_model(uri: str, tmp: str) -> Path:
    return Path(mlflow.artifacts.download_artifacts(uri, dst_path=tmp))


def _registered_version(client: MlflowClient, name: str, run_id: str, model_id: str) -> str:
    """The registry version of this run's model, registering it when it has none."""
    try:
        existing = list(client.search_model_versions(f"name = '{name}' and run_id = '{run_id}'"))
    except MlflowException:
        existing = []  # the registered model itself does not exist yet
    # Only a version of the model the run logged: another registered under its run id is not.
    existing = [found for found in existing if _source_model(found) == model_id]
    if existing:
        return str(min(int(found.version) for found in existing))
    return str(mlflow.register_model(f"models:/{model_id}", name).version)


def _checked_model(run, local: Path) -> tuple[dict[str, bytes], str, object]:
    """The model directory's files (relative paths), the model file's name and the model,
    loaded by `core.tracking.model_format` (Conflict when refused): before anything moves."""
    files = {
        path.relative_to(local).as_posix(): path.read_bytes()
        for path in sorted(p for p in local.rglob("*") if p.is_file())
    }
    run_id = run.info.run_id
    if SKOPS_FILE not in files:
        if PICKLE_FILE in files:
            raise Conflict(
                f"the model of run {run_id} is a pickle ({PICKLE_FILE}), which runs code when "
                "loaded: only skops models are promoted (train it again with this release)"
            )
        raise Conflict(f"the model of run {run_id} has no {SKOPS_FILE}: refusing it")
    try:
        pipeline = load_model(files[SKOPS_FILE], SKOPS_FILE)
    except Conflict as error:
        raise Conflict(f"the model of run {run_id}: {error}") from None
    head = pipeline.named_steps["encode"]
    if head.feature_set != run.data.tags["feature_set"]:
        raise Conflict(
            f"run {run_id} is tagged feature_set={run.data.tags['feature_set']} but its model "
            f"reads {head.feature_set}: refusing it"
        )
    return files, SKOPS_FILE, pipeline


def _export(settings: Settings, store: Store, run, version: str, checked: tuple) -> Manifest:
    """Publish the checked model's files under v<version>/, then the manifest that switches
    to them."""
    files, model_name, pipeline = checked
    model_dir = f"v{version}"
    tags = run.data.tags
    manifest = Manifest(
        registered_model=settings.registered_model_name,
        model_version=version,
        run_id=run.info.run_id,
        model_uri=f"models:/{settings.registered_model_name}/{version}",
        promoted_at=datetime.now(UTC).isoformat(),
        dataset_version=tags.get("dataset_version"),
        feature_set=tags.get("feature_set"),
        model_family=tags.get("model_family"),
        labels=[str(label) for label in pipeline.classes_],
        metrics=dict(run.data.metrics),
        input_schema=input_schema(pipeline),
        model_dir=model_dir,
        model_file=f"{model_dir}/{model_name}",
        files={},  # publish fills in the checksums of what it writes
    )
    published = {f"{model_dir}/{relative}": data for relative, data in files.items()}
    return publish(store, published, manifest)
