"""core.tracking.registry: listing and comparing runs, promotion to a local folder and to S3 over
HTTP (manifest last, checksums, re-promotion, a reader during promotion), errors, the CLI,
and the whole path against a real MLflow server."""

import hashlib
import json
import threading

import mlflow
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from core.data.feature_sets import FEATURE_SETS
from core.data.schema import LABELS, RECORD_FIELDS
from core.errors import Conflict, DpeError, InvalidInput, NotFound, Unavailable
from core.serving.champion import load_champion
from core.storage import Store
from core.tracking import registry
from core.tracking.champion_store import CHAMPION_DIR, MANIFEST_PATH, current
from core.tracking.model_format import load_model
from tests.support.cli import cli_env, run_cli
from tests.support.servers import free_port
from tests.support.training import fast_train, home_with_data

MANIFEST_KEYS = {
    "registered_model",
    "model_version",
    "run_id",
    "model_uri",
    "promoted_at",
    "dataset_version",
    "feature_set",
    "model_family",
    "labels",
    "metrics",
    "input_schema",
    "model_dir",
    "model_file",
    "files",
}
# A float: in-process pyfunc refuses int64 for a double field (its JSON server casts it).
RECORD = {"secteur_activite": "W : Administrations, banques, bureaux", "conso_kwhep_m2_an": 60.0}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Settings with two runs: the rule model and a small forest (both with-consumption)."""
    settings = home_with_data(tmp_path_factory.mktemp("registry"))
    rules = fast_train(settings, "rules")["run_id"]
    forest = fast_train(settings, "rf")["run_id"]
    return settings, {"rules": rules, "rf": forest}


@pytest.fixture
def local(trained, tmp_path):
    """The trained settings with a fresh local model store."""
    settings, runs = trained
    return settings.model_copy(update={"model_store_uri": f"file://{tmp_path}/store"}), runs


def stored_manifest(settings) -> dict | None:
    """The manifest the store holds, as JSON data, read through the champion-store contract."""
    manifest = current(Store(settings))
    return None if manifest is None else manifest.to_dict()


def stored_files(store: Store, manifest: dict) -> dict[str, str]:
    """sha256 of each file the manifest lists, as the store holds it."""
    return {
        relative: hashlib.sha256(store.read_bytes(f"{CHAMPION_DIR}/{relative}")).hexdigest()
        for relative in manifest["files"]
    }


def test_promote_exports_the_model_then_switches_the_manifest(local, monkeypatch):
    settings, runs = local
    writes, original = [], Store.write_bytes

    def recording(store, path, data):
        writes.append(path)
        original(store, path, data)

    monkeypatch.setattr(Store, "write_bytes", recording)
    result = registry.promote(settings, runs["rf"])
    version = result["model_version"]
    assert result["uri"] == f"models:/{settings.registered_model_name}/{version}"

    assert writes[-1] == MANIFEST_PATH  # the switch comes last
    assert all(path.startswith(f"{CHAMPION_DIR}/v{version}/") for path in writes[:-1])
    store = Store(settings)
    manifest = json.loads(store.read_bytes(MANIFEST_PATH))
    assert set(manifest) == MANIFEST_KEYS
    assert manifest["run_id"] == runs["rf"] and manifest["model_version"] == version
    assert manifest["model_file"] == f"v{version}/model.skops"
    assert {f"v{version}/MLmodel", f"v{version}/input_example.json"} <= set(manifest["files"])
    assert stored_files(store, manifest) == manifest["files"]
    assert manifest["labels"] == list(LABELS)
    assert manifest["feature_set"] == "with-consumption" and manifest["model_family"] == "rf"
    assert {"accuracy", "macro_f1", "balanced_accuracy", "log_loss"} <= set(manifest["metrics"])

    schema = {entry["name"]: entry for entry in manifest["input_schema"]}
    assert list(schema) == list(FEATURE_SETS["with-consumption"].fields)
    assert not any(entry["required"] for entry in schema.values())
    sector = schema["secteur_activite"]
    assert sector["type"] == "string" and set(RECORD_FIELDS["secteur_activite"].categories) <= set(
        sector["categories"]
    )
    assert schema["n_departement_ban"]["categories"] is None  # an open vocabulary
    assert schema["conso_kwhep_m2_an"] == {
        "name": "conso_kwhep_m2_an",
        "type": "number",
        "required": False,
        "categories": None,
        "min": 0,
        "max": 1_000_000,
        "unit": "kWhEP/m²/an",
    }

    model_file = manifest["model_file"]
    model = load_model(store.read_bytes(f"{CHAMPION_DIR}/{model_file}"), model_file)
    assert model.predict([RECORD])[0] in LABELS
    assert stored_manifest(settings) == manifest
    alias = MlflowClient(settings.tracking_uri).get_model_version_by_alias(
        settings.registered_model_name, "champion"
    )
    assert str(alias.version) == version and alias.run_id == runs["rf"]


def test_promoting_an_older_run_again_switches_back_to_its_version(local):
    settings, runs = local
    first = registry.promote(settings, runs["rules"])
    second = registry.promote(settings, runs["rf"])
    again = registry.promote(settings, runs["rules"])
    assert again["model_version"] == first["model_version"] != second["model_version"]
    manifest = stored_manifest(settings)
    assert manifest["run_id"] == runs["rules"]
    assert manifest["model_version"] == first["model_version"]
    store = Store(settings)
    assert store.exists(f"{CHAMPION_DIR}/v{second['model_version']}/model.skops")  # old stays
    assert stored_files(store, manifest) == manifest["files"]


def test_a_reader_during_promotions_always_sees_a_complete_champion(local):
    settings, runs = local
    registry.promote(settings, runs["rules"])
    store, seen, failures, done = Store(settings), set(), [], threading.Event()

    def read_until_done():
        while not done.is_set():
            manifest = json.loads(store.read_bytes(MANIFEST_PATH))
            found = stored_files(store, manifest)
            if found != manifest["files"]:
                failures.append(manifest["model_version"])
            seen.add(manifest["run_id"])

    reader = threading.Thread(target=read_until_done)
    reader.start()
    try:
        for run in ("rf", "rules", "rf"):
            registry.promote(settings, runs[run])
    finally:
        done.set()
        reader.join()
    assert failures == []
    assert seen == {runs["rules"], runs["rf"]}


def test_promote_to_s3_over_http_and_serve_from_it(trained, s3_endpoint, s3_bucket):
    settings, runs = trained
    settings = settings.model_copy(
        update={"model_store_uri": f"s3://{s3_bucket}/prefix", "s3_endpoint_url": s3_endpoint}
    )
    result = registry.promote(settings, runs["rf"])
    assert result["manifest"] == f"s3://{s3_bucket}/prefix/{MANIFEST_PATH}"
    manifest = stored_manifest(settings)
    assert stored_files(Store(settings), manifest) == manifest["files"]
    champion = load_champion(settings)  # the serving code's own loader and checks
    (prediction,) = champion.predict([RECORD])
    assert prediction["label"] in LABELS and prediction["error"] is None


def test_current_champion_is_none_before_any_promotion(local):
    settings, _ = local
    assert stored_manifest(settings) is None


def test_promotion_errors_are_one_line(local, trained):
    settings, _ = local
    with pytest.raises(NotFound, match="unknown run id 'f00d"):
        registry.promote(settings, "f00d" * 8)
    client = registry.connect(settings)
    bare = client.create_run(registry.experiment_id(settings, client)).info.run_id
    client.set_terminated(bare)
    with pytest.raises(Conflict, match=f"run {bare} lacks the training tags model_family, "):
        registry.promote(settings, bare)
    for tag in registry.TRAINING_TAGS:
        client.set_tag(bare, tag, "with-consumption")
    with pytest.raises(Conflict, match=f"run {bare} has no logged model"):
        registry.promote(settings, bare)
    down = settings.model_copy(
        update={
            "model_store_uri": "s3://bucket/prefix",
            "s3_endpoint_url": "http://127.0.0.1:9",
            "http_retries": 1,
            "http_timeout_s": 2,
        }
    )
    with pytest.raises(Unavailable, match=r"object store s3://bucket/prefix/.* unreachable"):
        registry.promote(down, trained[1]["rules"])


def test_mlflow_failures_are_of_the_kind_their_cause_says(settings):
    """Down or timing out: Unavailable (worth retrying); a name that does not resolve:
    InvalidInput (check MLFLOW_TRACKING_URI); MLflow's own codes by their meaning."""
    import requests
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import ErrorCode

    down = settings.model_copy(update={"mlflow_tracking_uri": f"http://127.0.0.1:{free_port()}"})
    with pytest.raises(Unavailable, match="unreachable"):
        registry.connect(down)
    nowhere = settings.model_copy(update={"mlflow_tracking_uri": "http://mlflow.invalid:5000"})
    with pytest.raises(InvalidInput, match="does not resolve: check MLFLOW_TRACKING_URI"):
        registry.connect(nowhere)

    def raised(error: MlflowException) -> DpeError:
        with pytest.raises(DpeError) as caught, registry.mlflow_errors(settings):
            raise error
        return caught.value

    def unanswered() -> MlflowException:
        """As MLflow's REST client raises it: within the handler of the network error."""
        try:
            try:
                raise requests.ConnectionError("connection refused")
            except requests.ConnectionError:
                raise MlflowException("API request to /api/2.0 failed with exception") from None
        except MlflowException as error:
            return error

    kinds = {
        "RESOURCE_DOES_NOT_EXIST": NotFound,
        "RESOURCE_ALREADY_EXISTS": Conflict,
        "INVALID_PARAMETER_VALUE": InvalidInput,
        "TEMPORARILY_UNAVAILABLE": Unavailable,
        "INTERNAL_ERROR": DpeError,
    }
    for error_code, kind in kinds.items():
        error = MlflowException("x", error_code=ErrorCode.Value(error_code))
        assert type(raised(error)) is kind, error_code
    assert type(raised(unanswered())) is Unavailable


def test_runs_are_listed_best_first_and_filtered(trained):
    settings, runs = trained
    listed = registry.list_runs(settings)
    assert set(runs.values()) <= set(listed["run_id"])
    # Best first; a run without the score (another test's, on the shared server) comes last.
    scores = listed["macro_f1"]
    scored = scores.dropna().tolist()
    assert scored == sorted(scored, reverse=True)
    assert scores.isna().tolist() == sorted(scores.isna().tolist())
    assert set(listed.columns) == set(registry.RUN_COLUMNS)
    row = listed.set_index("run_id").loc[runs["rules"]]
    assert row["model"] == "rules" and row["features"] == "with-consumption"
    assert bool(row["leaking"]) and row["baseline"] == "rules"
    assert row["monotonicity_violations"] == 0  # the official scales are monotone
    assert isinstance(row["start_time"], pd.Timestamp)
    assert registry.list_runs(settings, feature_set="building-only").empty
    assert registry.list_runs(settings, dataset_version="nope").empty
    other = settings.model_copy(update={"experiment_name": "never-created"})
    assert registry.list_runs(other).empty


def test_run_details_give_params_per_class_metrics_and_artifacts(trained):
    settings, runs = trained
    details = registry.run_details(settings, runs["rf"])
    assert details["params"]["model"] == "rf" and details["model"] == "rf"
    assert set(details["per_class"]) == set(LABELS)
    assert set(details["per_class"]["A"]) == {"precision", "recall", "f1", "support"}
    assert "baseline_rules_macro_f1" in details["baseline"]
    assert "figures" in details["artifacts"]
    assert details["model_uri"].startswith("models:/m-")
    with pytest.raises(NotFound, match="unknown run id"):
        registry.run_details(settings, "0" * 32)


@pytest.mark.slow
def test_cli_promote_and_runs(local):
    settings, runs = local
    env = cli_env(settings) | {
        "DPE_EXPERIMENT_NAME": settings.experiment_name,
        "DPE_REGISTERED_MODEL_NAME": settings.registered_model_name,
    }
    code, result, stderr = run_cli("promote", runs["rules"], env=env)
    assert code == 0, stderr
    assert set(result) >= {"model_version", "run_id", "uri"}
    assert stored_manifest(settings)["run_id"] == runs["rules"]
    code, result, stderr = run_cli("promote", "nope", env=env)
    assert code == 3 and result["error"]["code"] == "not_found"
    assert stderr.strip().splitlines()[-1].startswith("error: unknown run id 'nope'")


@pytest.mark.slow
def test_train_and_promote_through_a_real_mlflow_server(tmp_path, mlflow_server):
    settings = home_with_data(tmp_path, tracking_uri=mlflow_server, rows=800)
    trained = fast_train(settings, "rf")
    client = MlflowClient(mlflow_server)
    experiment = client.get_experiment_by_name(settings.experiment_name)
    assert experiment.artifact_location.startswith("mlflow-artifacts:/")  # the server's choice
    assert registry.list_runs(settings)["run_id"].tolist() == [trained["run_id"]]
    model = mlflow.pyfunc.load_model(trained["model_uri"])
    assert model.predict(pd.DataFrame([RECORD]))[0] in LABELS

    result = registry.promote(settings, trained["run_id"])
    manifest = stored_manifest(settings)
    assert manifest["model_version"] == result["model_version"]
    assert stored_files(Store(settings), manifest) == manifest["files"]
    assert registry.run_details(settings, trained["run_id"])["artifacts"]
