"""Issue 24 #1 and #9 on a real MLflow server: whoever can write to MLflow (no credentials needed)
can log a run, register it and move the alias `champion`. Promotion and sync accept only the
project's training runs and skops models of trusted types; a refused version leaves the store's
champion served, a model in the store that runs code is never loaded, and nothing ever runs."""

import os
import subprocess
import sys
import time

import httpx
import mlflow
import pytest
from mlflow.tracking import MlflowClient
from sklearn.linear_model import LogisticRegression

from core.errors import Conflict
from core.storage import Store
from core.tracking import registry
from core.tracking.champion_store import Manifest, current, publish, read_manifest
from core.tracking.model_format import TRUSTED_TYPES
from core.tracking.sync import sync_champion
from tests.support.api import api_server, wait_until
from tests.support.champion import labelled, train_pipeline
from tests.support.cli import ROOT, cli_env, run_cli
from tests.support.crafted import Trojan, trojan_pickle
from tests.support.training import fast_train, home_with_data
from tooling.synth import generate_records


@pytest.fixture(scope="module")
def project(tmp_path_factory, mlflow_server):
    """The project on a real MLflow server: a rule model trained and promoted (version 1)."""
    root = tmp_path_factory.mktemp("supply")
    settings = home_with_data(root, tracking_uri=mlflow_server, rows=600)
    rules = fast_train(settings, "rules")
    promoted = registry.promote(settings, rules["run_id"])
    return settings, rules | {"version": promoted["model_version"]}


@pytest.fixture
def settings(project):
    """The project's settings; the alias back on version 1 after each test."""
    settings, rules = project
    yield settings
    registry.connect(settings)
    MlflowClient(settings.tracking_uri).set_registered_model_alias(
        settings.registered_model_name, "champion", rules["version"]
    )


def tags(settings) -> dict:
    """The training tags, as an attacker copies them from a real run."""
    return {"feature_set": "with-consumption", "model_family": "rf", "dataset_version": "x"}


def log_model(
    settings, model, *, experiment: str | None = None, run_tags: dict | None = None, **options
) -> str:
    """A run logging `model` through MLflow's own API; returns the logged model's URI."""
    registry.connect(settings)
    mlflow.set_experiment(experiment or settings.experiment_name)
    options = {"serialization_format": "skops", "skops_trusted_types": list(TRUSTED_TYPES)} | (
        options
    )
    # pip_requirements given: MLflow would otherwise load the model to infer them.
    with mlflow.start_run(tags=run_tags if run_tags is not None else tags(settings)):
        info = mlflow.sklearn.log_model(model, name="model", pip_requirements=[], **options)
    return info.model_uri


def alias_at(settings, model_uri: str, run_id: str | None = None) -> str:
    """Register `model_uri` (under `run_id` if given) and point the alias at it."""
    client = MlflowClient(settings.tracking_uri)
    name = settings.registered_model_name
    if run_id is None:
        version = mlflow.register_model(model_uri, name).version
    else:  # a version that says it comes from a training run, with another model
        model_id = model_uri.removeprefix("models:/")
        version = client.create_model_version(name, model_uri, run_id, model_id=model_id).version
    client.set_registered_model_alias(name, "champion", version)
    return str(version)


def foreign_models(settings, rules_run_id: str) -> dict[str, tuple[str, str | None]]:
    """Issue 24 #9's foreign champions: {case: (model URI, run id to claim)}."""
    X, y = labelled(generate_records(400, seed=8))
    pipeline = train_pipeline(n_estimators=3)
    plain = LogisticRegression(max_iter=200).fit(X[["surface_utile"]].fillna(0), y)
    return {
        "a plain LogisticRegression": (log_model(settings, plain), None),
        "another experiment": (log_model(settings, pipeline, experiment="elsewhere"), None),
        "no training tags": (log_model(settings, pipeline, run_tags={}), None),
        "a pickle": (log_model(settings, pipeline, serialization_format="cloudpickle"), None),
        "another model under a training run": (log_model(settings, plain), rules_run_id),
    }


REASONS = {
    "a plain LogisticRegression": "holds a sklearn.linear_model._logistic.LogisticRegression",
    "another experiment": "is not in the experiment",
    "no training tags": "lacks the training tags model_family, feature_set, dataset_version",
    "a pickle": r"is a pickle \(model.pkl\), which runs code",
    "another model under a training run": "is not the model its run",
}


def test_sync_refuses_a_foreign_champion_and_keeps_the_store_s_one(project, settings):
    _, rules = project
    for case, (uri, run_id) in foreign_models(settings, rules["run_id"]).items():
        version = alias_at(settings, uri, run_id)
        with pytest.raises(Conflict, match=REASONS[case]):
            sync_champion(settings)
        manifest = read_manifest(Store(settings))
        assert (manifest.model_version, manifest.run_id) == (rules["version"], rules["run_id"])
        assert version != rules["version"], case


def test_the_cli_says_why_without_a_traceback_and_the_watch_keeps_going(settings, tmp_path):
    X, y = labelled(generate_records(400, seed=8))
    plain = LogisticRegression(max_iter=200).fit(X[["surface_utile"]].fillna(0), y)
    alias_at(settings, log_model(settings, plain))
    env = cli_env(settings)
    code, result, stderr = run_cli("sync", env=env)
    assert code == 4 and result["error"]["code"] == "conflict"
    assert "error: " in stderr and "LogisticRegression" in stderr
    assert "Traceback" not in stderr

    log = tmp_path / "watch.log"
    command = [sys.executable, "-m", "core", "sync", "--watch", "0.2"]
    with open(log, "wb") as out:
        watcher = subprocess.Popen(
            command, stderr=out, stdout=out, env={**os.environ, **env}, cwd=ROOT
        )
        try:
            wait_until(lambda: "LogisticRegression" in log.read_text(), 120, "the refusal")
            time.sleep(3)  # more passes, each refusing again
            assert watcher.poll() is None  # still following the alias
        finally:
            watcher.terminate()
            watcher.wait(timeout=10)
    said = log.read_text()
    assert said.count("LogisticRegression") == 1  # refused once, not every pass
    assert "Traceback" not in said and "/health" not in said  # no health check per pass
    assert current(Store(settings)).model_version == "1"


def test_promote_refuses_a_run_of_another_experiment_before_registering_it(settings):
    pipeline = train_pipeline(n_estimators=3)
    uri = log_model(settings, pipeline, experiment="elsewhere")
    run_id = mlflow.models.get_model_info(uri).run_id
    with pytest.raises(Conflict, match="is not in the experiment"):
        registry.promote(settings, run_id)
    found = MlflowClient(settings.tracking_uri).search_model_versions(f"run_id = '{run_id}'")
    assert list(found) == []
    assert current(Store(settings)).model_version == "1"


@pytest.mark.slow
def test_a_model_that_runs_code_never_runs_in_sync_nor_in_the_api(project, settings, tmp_path):
    """Issue 24 #1: a run in the project's experiment, with the training tags, whose model
    pickle creates a marker file and returns a working pipeline."""
    _, rules = project
    marker = tmp_path / "ran"
    working = train_pipeline(n_estimators=3)
    registry.connect(settings)
    mlflow.set_experiment(settings.experiment_name)
    with mlflow.start_run(tags=tags(settings)):
        # MLflow's own "pickle" format: it pickles the object, whose pickle is the payload.
        info = mlflow.sklearn.log_model(
            Trojan(working, marker),
            name="model",
            serialization_format="pickle",
            pip_requirements=[],
        )
    version = alias_at(settings, info.model_uri)

    code, _, stderr = run_cli("sync", env=cli_env(settings))
    assert code == 4 and "is a pickle" in stderr and "Traceback" not in stderr
    with pytest.raises(Conflict, match="pickle"):
        registry.promote(settings, info.run_id)
    assert not marker.exists()
    assert read_manifest(Store(settings)).model_version == rules["version"]

    # Whoever can write to the store publishes it there, with its own sha256.
    with api_server(settings, tmp_path) as url:
        wait_until(lambda: ready(url) == rules["version"], 60, "the API serving version 1")
        served = read_manifest(Store(settings))
        trojan = {f"v{version}/model.pkl": trojan_pickle(working, marker)}
        manifest = Manifest(
            model_version=version,
            model_file=f"v{version}/model.pkl",
            files={},
            input_schema=served.input_schema,
        )
        publish(Store(settings), trojan, manifest)
        wait_until(lambda: "builtins.eval" in (health(url).get("detail") or ""), what="refusal")
        assert ready(url) != version
        answer = httpx.post(f"{url}/predict", json={"records": [{}]}, timeout=10).json()
        assert answer["model_version"] == rules["version"]
    assert not marker.exists()


def health(url: str) -> dict:
    return httpx.get(f"{url}/health", timeout=5).json()


def ready(url: str) -> str | None:
    """The version /readyz reports, None while it is not ready."""
    answer = httpx.get(f"{url}/readyz", timeout=5)
    return answer.json().get("model_version") if answer.status_code == 200 else None
