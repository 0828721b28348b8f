"""Two API replicas on loopback sharing one S3 store (moto server over HTTP), each with its
own DPE_HOME: both log their predictions to the store, and one drift report counts the
traffic of both; `drift --client` keeps one client's (16.11).

Set up with the real code paths: generated records ingested, a `building-only` model
trained (MLflow over SQLite) and promoted to the S3 store."""

import hashlib
import time

import httpx
import pandas as pd
import pytest

from core.config import Settings
from core.data.ingest import ingest
from core.data.schema import RECORD_FIELDS
from core.data.validation import clean
from core.modeling import train
from core.monitoring.drift import drift_report
from core.monitoring.prediction_store import read_predictions
from core.storage import Store
from core.tracking import registry
from tests.support.api import api_process, wait_until
from tests.support.cli import cli_env, run_cli
from tooling import synth

pytestmark = pytest.mark.slow

TOKEN = "replica-b-predict-token-0123456789"
SENT = 60  # per replica; DPE_DRIFT_MIN_ROWS is 50


def as_json_records(frame: pd.DataFrame) -> list[dict]:
    fields = frame[list(RECORD_FIELDS)].astype(object)
    return [
        {name: None if pd.isna(value) else value for name, value in row.items()}
        for row in fields.to_dict("records")
    ]


@pytest.fixture
def promoted(tmp_path, s3_endpoint, s3_bucket) -> Settings:
    """Settings whose S3 store holds a promoted champion and its training dataset."""
    settings = Settings(
        _env_file=None,
        home=tmp_path / "home",
        mlflow_tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
        model_store_uri=f"s3://{s3_bucket}/store",
        s3_endpoint_url=s3_endpoint,
    )
    ingest(settings, source=synth.write_csv(tmp_path / "training.csv", 2_000, seed=3))
    run = train.train(settings, "building-only", "logreg", search="none")
    registry.promote(settings, run["run_id"])
    return settings


def test_two_replicas_one_drift_report(promoted, tmp_path):
    settings = promoted
    replica = {"DPE_LOG_PREDICTIONS": "true", "DPE_LOG_FLUSH_S": "0.2"}
    records = as_json_records(clean(synth.generate_records(2 * SENT, seed=11)))
    homes = {name: settings.model_copy(update={"home": tmp_path / name}) for name in "ab"}
    for name in "ab":
        (tmp_path / f"log-{name}").mkdir()
    with (
        api_process(homes["a"], tmp_path / "log-a", **replica) as (url_a, pid_a),
        api_process(homes["b"], tmp_path / "log-b", DPE_PREDICT_TOKEN=TOKEN, **replica) as (
            url_b,
            pid_b,
        ),
    ):
        for url in (url_a, url_b):
            wait_until(lambda u=url: httpx.get(f"{u}/readyz").status_code == 200, timeout_s=60)
        answer_a = httpx.post(f"{url_a}/predict", json={"records": records[:SENT]}, timeout=30)
        answer_b = httpx.post(
            f"{url_b}/predict",
            json={"records": records[SENT:]},
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=30,
        )
        assert answer_a.status_code == answer_b.status_code == 200
        deadline = time.monotonic() + 20
        while len(read_predictions(settings)) < 2 * SENT:
            assert time.monotonic() < deadline, "the replicas did not log every prediction"
            time.sleep(0.2)

    # Each replica wrote its own parts, into the store: none on either replica's disk.
    parts = [p for p in Store(settings).list("predictions") if p.endswith(".parquet")]
    assert {str(pid_a), str(pid_b)} <= {part.rsplit("-", 2)[-2] for part in parts}
    assert not any((tmp_path / name / "predictions").exists() for name in "ab")

    # Both replicas' rows, those of replica a's client without a token sampled (issue 24.18).
    report = drift_report(settings)
    sampled = settings.drift_rows_per_host
    assert (
        report["rows"]["current"] == SENT + sampled and report["rows"]["left_out"] == SENT - sampled
    )
    assert report["verdict"] != "too little data"

    token_client = "token:" + hashlib.sha256(TOKEN.encode()).hexdigest()[:12]
    for client in (token_client, "host:127.0.0.1"):
        code, payload, stderr = run_cli("drift", "--client", client, env=cli_env(settings))
        assert code == 0, stderr
        assert payload["rows"]["current"] == SENT and payload["window"]["client"] == client
    code, payload, _ = run_cli("drift", "--client", "host:10.9.9.9", env=cli_env(settings))
    assert code == 0 and payload["rows"]["current"] == 0
