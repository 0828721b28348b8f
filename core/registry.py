"""Runs, comparison, and promotion of a champion to the model store.

`promote(settings, run_id)` registers a run's model as `Settings.registered_model_name`,
exports its MLflow model directory to the store, then sets the registry alias `champion`.
The store layout is the contract `core.predict` and the API read:

    models/dpe/champion/v<N>/...        the files of the MLflow model (MLmodel, model.pkl...)
    models/dpe/champion/manifest.json   written LAST: the atomic switch to version N

A reader reads the manifest first, then the files it lists (with their sha256), so during a
promotion it sees either the previous champion or the new one, complete.
"""

import hashlib
import json
import logging
import pickle
import tempfile
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlparse

import httpx
import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from core.config import Settings
from core.errors import DpeError
from core.evaluate import HEADLINE
from core.feature_sets import FEATURE_SETS
from core.predict import CHAMPION_DIR, MANIFEST_PATH
from core.schema import LABELS, RECORD_FIELDS
from core.storage import Store

log = logging.getLogger(__name__)

CHAMPION_ALIAS = "champion"
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
            raise DpeError(
                f"MLflow server {uri} unreachable ({_one_line(error)}): start it (make run) "
                "or set MLFLOW_TRACKING_URI"
            ) from error
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _is_http(uri: str) -> bool:
    return urlparse(uri).scheme in ("http", "https")


@contextmanager
def mlflow_errors(settings: Settings):
    """MLflow failures as one-line DpeErrors naming the tracking server."""
    try:
        yield
    except MlflowException as error:
        message = _one_line(error.message)
        raise DpeError(f"MLflow ({settings.tracking_uri}): {message}") from error


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
        return client.get_experiment_by_name(settings.experiment_name).experiment_id


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
    return pd.DataFrame([_run_row(run) for run in runs], columns=list(RUN_COLUMNS))


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
            raise DpeError(f"unknown run id {run_id!r} in {settings.tracking_uri}") from error
        raise


def _model_id(run) -> str:
    outputs = run.outputs.model_outputs if run.outputs else []
    if not outputs:
        raise DpeError(f"run {run.info.run_id} has no logged model: nothing to promote")
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


def promote(settings: Settings, run_id: str) -> dict:
    """Register the run's model, export it to the store (manifest last), alias it `champion`.

    Promoting a run already registered reuses its version: promoting an older champion
    again switches the manifest back to it.
    """
    client = connect(settings)
    name = settings.registered_model_name
    store = Store(settings)
    store.exists(MANIFEST_PATH)  # an unreachable store fails here, before the registry changes
    with mlflow_errors(settings):
        run = _get_run(settings, client, run_id)
        model_id = _model_id(run)
        version = _registered_version(client, name, run_id, model_id)
        log.info("promote: run %s is %s version %s", run_id, name, version)
        with tempfile.TemporaryDirectory() as tmp:
            local = mlflow.artifacts.download_artifacts(
                artifact_uri=f"models:/{name}/{version}", dst_path=tmp
            )
            manifest = _export(settings, store, run, version, Path(local))
        client.set_registered_model_alias(name, CHAMPION_ALIAS, version)
    return {
        "model_version": version,
        "run_id": run_id,
        "uri": manifest["model_uri"],
        "alias": f"models:/{name}@{CHAMPION_ALIAS}",
        "manifest": store.uri(MANIFEST_PATH),
    }


def _registered_version(client: MlflowClient, name: str, run_id: str, model_id: str) -> str:
    """The registry version of this run's model, registering it when it has none."""
    try:
        existing = client.search_model_versions(f"name = '{name}' and run_id = '{run_id}'")
    except MlflowException:
        existing = []  # the registered model itself does not exist yet
    if existing:
        return str(min(int(found.version) for found in existing))
    return str(mlflow.register_model(f"models:/{model_id}", name).version)


def _export(settings: Settings, store: Store, run, version: str, local: Path) -> dict:
    """Write the model's files under v<version>/, then the manifest that switches to them."""
    model_dir = f"v{version}"
    files = {}
    for path in sorted(p for p in local.rglob("*") if p.is_file()):
        data = path.read_bytes()
        relative = f"{model_dir}/{path.relative_to(local).as_posix()}"
        store.write_bytes(f"{CHAMPION_DIR}/{relative}", data)
        files[relative] = hashlib.sha256(data).hexdigest()
    model_file = f"{model_dir}/model.pkl"
    if model_file not in files:
        raise DpeError(f"the model of run {run.info.run_id} has no model.pkl (not a pickle model)")
    pipeline = pickle.loads((local / "model.pkl").read_bytes())
    tags = run.data.tags
    manifest = {
        "registered_model": settings.registered_model_name,
        "model_version": version,
        "run_id": run.info.run_id,
        "model_uri": f"models:/{settings.registered_model_name}/{version}",
        "promoted_at": datetime.now(UTC).isoformat(),
        "dataset_version": tags.get("dataset_version"),
        "feature_set": tags.get("feature_set"),
        "model_family": tags.get("model_family"),
        "labels": [str(label) for label in pipeline.classes_],
        "metrics": dict(run.data.metrics),
        "input_schema": input_schema(pipeline),
        "model_dir": model_dir,
        "model_file": model_file,
        "files": files,
    }
    store.write_bytes(MANIFEST_PATH, json.dumps(manifest, indent=2, ensure_ascii=False).encode())
    return manifest


def input_schema(pipeline) -> list[dict]:
    """Every field of the model's feature set, all optional.

    `categories`: for a field with ADEME's closed vocabulary, that vocabulary plus any other
    value seen in training (what the model knows); None for an open one (département).
    """
    head = pipeline.named_steps["encode"]  # RecordEncoder, or RecordFrame for rules
    known = getattr(head, "known_values_", {})
    schema = []
    for name in FEATURE_SETS[head.feature_set].fields:
        spec = RECORD_FIELDS[name]
        categories = None
        if spec.kind == "category" and spec.categories:
            categories = sorted(set(spec.categories) | set(known.get(name, ())))
        schema.append(
            {
                "name": name,
                "type": "string" if spec.kind == "category" else "number",
                "required": False,
                "categories": categories,
                "min": spec.min,
                "max": spec.max,
                "unit": spec.unit,
            }
        )
    return schema


def current_champion(settings: Settings) -> dict | None:
    """The champion's manifest as the store holds it; None when nothing was promoted."""
    store = Store(settings)
    try:
        return json.loads(store.read_bytes(MANIFEST_PATH))
    except FileNotFoundError:
        return None


# --- CLI -------------------------------------------------------------------------------------


def add_cli(subparsers) -> None:
    runs = subparsers.add_parser("runs", help="list training runs, best macro-F1 first")
    runs.add_argument("--features", choices=tuple(FEATURE_SETS))
    runs.add_argument("--dataset", help="only runs on this dataset version")
    runs.set_defaults(run=_runs_command)
    promote_parser = subparsers.add_parser(
        "promote", help="register a run's model and make it the champion"
    )
    promote_parser.add_argument("run_id", metavar="RUN_ID")
    promote_parser.set_defaults(run=_promote_command)


def _runs_command(args, settings: Settings) -> dict:
    frame = list_runs(settings, feature_set=args.features, dataset_version=args.dataset)
    frame["start_time"] = frame["start_time"].map(lambda t: t.isoformat())
    records = frame.astype(object).where(frame.notna(), None).to_dict("records")
    return {"experiment": settings.experiment_name, "count": len(records), "runs": records}


def _promote_command(args, settings: Settings) -> dict:
    return promote(settings, args.run_id)
