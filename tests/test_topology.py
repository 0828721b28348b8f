"""The docker-compose deployment, proven without a Docker engine: the same services started
from packages on 127.0.0.1 (tests/support/topology.py) with the environment variables
docker-compose.yml sets, then the whole flow: ingest -> train -> promote -> the API serves
the champion read from S3."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support.cli import ROOT
from tests.support.topology import (
    S3_CLIENTS,
    SECRETS,
    compose_service,
    infrastructure,
    interpolate,
    load_compose,
    s3_buckets,
    s3_client,
    s3_keys,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def topology(tmp_path_factory):
    with infrastructure(tmp_path_factory.mktemp("topology")) as started:
        yield started


def cli(env: dict, *args: str) -> dict:
    """`python -m core ARGS --json` with a compose service's environment; its JSON answer."""
    completed = subprocess.run(
        [sys.executable, "-m", "core", *args, "--json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **env},
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    try:
        return json.loads(completed.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"`{args[0]} --json` printed more than one JSON object:\n{completed.stdout}")


def test_interpolation_follows_compose_rules():
    variables = {"SET": "value", "EMPTY": ""}
    assert interpolate("a-${SET}-$SET-$$SET", variables) == "a-value-value-$SET"
    assert interpolate("${EMPTY:-fallback}|${EMPTY-fallback}|${UNSET-x}", variables) == (
        "fallback||x"
    )
    with pytest.raises(KeyError, match="set it"):
        interpolate("${EMPTY:?set it}", variables)


def test_every_bucket_compose_uses_is_created_by_minio_setup():
    compose = load_compose()
    setup = compose["services"]["minio-setup"]
    assert setup["entrypoint"] == ["/bin/sh", "/setup/setup.sh"]
    assert "./deploy/minio:/setup:ro" in setup["volumes"]
    script = (ROOT / "deploy" / "minio" / "setup.sh").read_text()
    buckets = s3_buckets()
    assert buckets, "no s3:// URI in docker-compose.yml"
    for bucket in buckets:
        assert f"mc mb --ignore-existing local/{bucket}" in script


def test_each_s3_client_has_its_own_minio_user_with_a_policy():
    """No client holds MinIO's root account; each one's user is made by minio-setup with its
    policy file, and that policy reaches only the prefixes the client uses."""
    import json

    compose = load_compose()
    users = {}
    for service in S3_CLIENTS:
        env = compose["services"][service]["environment"]
        users[service] = env["AWS_ACCESS_KEY_ID"]
        assert "MINIO_ROOT" not in str(env["AWS_SECRET_ACCESS_KEY"]), service
    assert len(set(users.values())) == len(users), users
    script = (ROOT / "deploy" / "minio" / "setup.sh").read_text()
    for user in users.values():
        client = user.removeprefix("dpe-")
        assert client in script
        policy = json.loads((ROOT / "deploy" / "minio" / "policies" / f"{client}.json").read_text())
        objects = [
            resource
            for statement in policy["Statement"]
            for resource in statement["Resource"]
            if "s3:PutObject" in statement["Action"] or "s3:GetObject" in statement["Action"]
        ]
        assert objects and all(
            r.startswith("arn:aws:s3:::dpe/") and r != "arn:aws:s3:::dpe/*" for r in objects
        ), (client, objects)
    api = json.loads((ROOT / "deploy" / "minio" / "policies" / "api.json").read_text())
    written = {r for s in api["Statement"] if "s3:PutObject" in s["Action"] for r in s["Resource"]}
    assert written == {"arn:aws:s3:::dpe/store/predictions/*"}  # the API never writes a model


def test_processes_share_store_and_tracking_server():
    """The API reads the champion where the workbench's promote writes it."""
    compose = load_compose()
    api, workbench = (
        {
            k: interpolate(str(v), SECRETS)
            for k, v in compose["services"][name]["environment"].items()
        }
        for name in ("api", "workbench")
    )
    for name in ("DPE_MODEL_STORE_URI", "DPE_S3_ENDPOINT_URL"):
        assert api[name] == workbench[name], name
    assert "MLFLOW_TRACKING_URI" not in api  # the API reads the store, never MLflow
    assert workbench["DPE_API_URL"] == "http://api:8000"
    mlflow_command = compose["services"]["mlflow"]["command"]
    assert "--serve-artifacts" in mlflow_command
    assert "mlflow:5000" in mlflow_command[mlflow_command.index("--allowed-hosts") + 1]


def test_mlflow_answers_no_one_without_its_login(topology):
    """MLflow behind its basic-auth app: no user, a wrong password: 401; the health check
    stays open to probes; the clients' login (compose's MLFLOW_TRACKING_*) is let in."""
    search = f"{topology.url('mlflow')}/api/2.0/mlflow/experiments/search?max_results=1"
    assert httpx.get(search, timeout=10).status_code == 401
    login = topology.env("workbench")
    user = login["MLFLOW_TRACKING_USERNAME"]
    assert httpx.get(search, auth=(user, "a-guess"), timeout=10).status_code == 401
    assert httpx.get(f"{topology.url('mlflow')}/health", timeout=10).status_code == 200
    answer = httpx.get(search, auth=(user, login["MLFLOW_TRACKING_PASSWORD"]), timeout=10)
    assert answer.status_code == 200, answer.text
    register = f"{topology.url('mlflow')}/api/2.0/mlflow/registered-models/create"
    assert httpx.post(register, json={"name": "intruder"}, timeout=10).status_code == 401


def test_mlflow_server_keeps_runs_in_postgres_and_artifacts_in_s3(topology, tmp_path, monkeypatch):
    """MLflow as compose runs it: healthy by compose's own healthcheck, an experiment in
    its own Postgres database, an artifact logged by a client without S3 credentials landing
    in the bucket."""
    import psycopg2
    from mlflow import MlflowClient

    assert topology.healthcheck("mlflow").returncode == 0
    for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        monkeypatch.setenv(name, topology.env("workbench")[name])

    client = MlflowClient(tracking_uri=topology.url("mlflow"))
    experiment_id = client.create_experiment("topology-check")
    run = client.create_run(experiment_id)
    client.log_text(run.info.run_id, "logged through the server", "notes/check.txt")
    client.set_terminated(run.info.run_id)
    assert client.get_run(run.info.run_id).info.artifact_uri.startswith("mlflow-artifacts:")

    # Artifacts: proxied by the server into the bucket, under its --artifacts-destination.
    keys = s3_keys(topology, *topology.artifacts_destination())
    assert any(key.endswith(f"{run.info.run_id}/artifacts/notes/check.txt") for key in keys), keys
    local = client.download_artifacts(run.info.run_id, "notes/check.txt", str(tmp_path))
    assert Path(local).read_text() == "logged through the server"

    # Runs: in Postgres, the backend store compose gives the server: its own database and role.
    postgres = topology.env("postgres")
    with (
        psycopg2.connect(
            host="127.0.0.1",
            port=topology.ports["postgres"],
            user="mlflow",
            password=postgres["MLFLOW_DB_PASSWORD"],
            dbname="mlflow",
        ) as connection,
        connection.cursor() as cursor,
    ):
        cursor.execute("SELECT name FROM experiments")
        assert "topology-check" in {name for (name,) in cursor.fetchall()}


def test_workbench_starts_as_compose_runs_it(topology, tmp_path):
    """Streamlit with compose's command and environment: healthy by compose's healthcheck."""
    with compose_service(topology, "workbench", tmp_path, env={"DPE_HOME": str(tmp_path)}):
        assert topology.healthcheck("workbench").returncode == 0
        page = httpx.get(topology.url("workbench"), timeout=10)
        assert page.status_code == 200 and "<html" in page.text.lower()


def _record_for(schema: list[dict], row: dict) -> dict:
    """One prediction record from a CSV row, fields and types as the manifest describes them."""
    from core.data.schema import SNAKE_TO_OFFICIAL

    record = {}
    for spec in schema:
        raw = row.get(SNAKE_TO_OFFICIAL.get(spec["name"], spec["name"]), "")
        if raw.strip():
            record[spec["name"]] = float(raw) if spec["type"] == "number" else raw
    return record


@pytest.mark.timeout(600)  # five CLI runs and a server, each checked by MLflow's login
def test_ingest_train_promote_then_api_serves_the_champion_from_s3(topology, sample_csv, tmp_path):
    """The compose flow: the workbench's CLI trains and promotes through the MLflow server into
    the S3 store; the API, with compose's environment and its own empty DPE_HOME, serves it."""
    env = {**topology.env("workbench"), "DPE_HOME": str(tmp_path / "workbench-home")}
    ingested = cli(env, "ingest", "--source", str(sample_csv))
    bucket, _, prefix = env["DPE_MODEL_STORE_URI"].removeprefix("s3://").partition("/")
    snapshot = f"{prefix}/datasets/{ingested['dataset_version']}.parquet"
    assert snapshot in s3_keys(topology, bucket, f"{prefix}/datasets/")
    quick = ["--search", "none", "--cv", "2"]  # this proves the wiring, not the model
    trained = cli(env, "train", "--features", "building-only", "--model", "logreg", *quick)
    assert 0 <= trained["metrics"]["macro_f1"] <= 1
    promoted = cli(env, "promote", trained["run_id"])
    assert promoted["run_id"] == trained["run_id"]

    # The champion and its manifest are in the bucket, and the run's model in MLflow's prefix.
    manifest_key = f"{prefix}/models/dpe/champion/manifest.json"
    body = s3_client(topology).get_object(Bucket=bucket, Key=manifest_key)["Body"].read()
    manifest = json.loads(body)
    assert manifest["run_id"] == trained["run_id"]
    assert manifest["model_version"] == promoted["model_version"]
    mlflow_bucket, mlflow_prefix = topology.artifacts_destination()
    run_files = s3_keys(topology, mlflow_bucket, mlflow_prefix)
    assert any(f"{trained['run_id']}/" in key for key in run_files), "run logged nothing to S3"

    with open(sample_csv, newline="", encoding="utf-8") as handle:
        row = next(r for r in csv.DictReader(handle) if r["Etiquette_DPE"] in set("ABCDEFG"))
    record = _record_for(manifest["input_schema"], row)

    with compose_service(topology, "api", tmp_path, env={"DPE_HOME": str(tmp_path / "api-home")}):
        api = topology.url("api")
        assert httpx.get(f"{api}/health", timeout=10).status_code == 200
        assert topology.healthcheck("api").returncode == 0  # compose's healthcheck agrees
        assert httpx.get(f"{api}/model", timeout=10).json()["run_id"] == trained["run_id"]
        answer = httpx.post(f"{api}/predict", json={"records": [record]}, timeout=30)
        assert answer.status_code == 200, answer.text
        payload = answer.json()
        assert str(payload["model_version"]) == str(promoted["model_version"])
        (prediction,) = payload["predictions"]
        assert prediction["label"] in set("ABCDEFG")
        assert set(prediction["probabilities"]) == set("ABCDEFG")
        assert abs(sum(prediction["probabilities"].values()) - 1) < 1e-6


def test_airflow_and_mlflow_each_own_one_database(topology):
    """compose's first-start script (deploy/postgres) as PostgreSQL ran it: Airflow's role
    opens its database, not MLflow's; neither role is a superuser."""
    import psycopg2

    postgres = topology.env("postgres")
    airflow_url = topology.env("airflow-scheduler")["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert "//airflow:" in airflow_url and airflow_url.endswith("/airflow")

    def connect(user: str, database: str):
        password = postgres[f"{user.upper()}_DB_PASSWORD"]
        port = topology.ports["postgres"]
        return psycopg2.connect(
            host="127.0.0.1", port=port, user=user, password=password, dbname=database
        )

    for user in ("airflow", "mlflow"):
        with connect(user, user) as connection, connection.cursor() as cursor:
            cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
            assert cursor.fetchone() == (False,)
    with pytest.raises(psycopg2.OperationalError, match="permission denied"):
        connect("airflow", "mlflow")
