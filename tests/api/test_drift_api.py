"""Monitoring's must-show: records sent to the API over a real socket are logged, and the drift
report flags exactly the features that were shifted, and none for a resample.

Set up once with the real code paths: 3,000 generated records ingested (a dataset version), a
`building-only` model trained on it (MLflow over SQLite) and promoted champion, then the API
(uvicorn on 127.0.0.1, started and stopped here) serving it and logging its predictions.

The shifted records come from the same generator with far more « M : Magasins de vente,
centres commerciaux » (90 % of records instead of ~11 %) and every surface three times larger.
Of the champion's 13 features, exactly these must drift, and why:
- secteur_activite: shifted directly;
- surface_utile and surface_shon: the generator's `surface_scale` multiplies both (the 100 m²
  placeholder of surface_utile too, so its point-mass bin empties);
- categorie_erp: the generator draws the ERP category given the sector, and « M » buildings
  are mostly 5ème catégorie (85 %, against ~60 % overall): it follows mechanically.
Everything else (period, year, energies, method, version, département) is drawn independently
of sector and surface, so it must not drift. A resample of the training records sent the same
way must flag nothing.
"""

import sys
import time
from contextlib import contextmanager
from datetime import UTC, datetime

import httpx
import pandas as pd
import pytest

from core.config import Settings
from core.data.ingest import ingest
from core.data.schema import RECORD_FIELDS
from core.data.validation import clean
from core.data.warehouse import load_dataset
from core.modeling import train
from core.monitoring.drift import drift_report, labelled_rows
from core.monitoring.prediction_store import read_predictions
from core.tracking import registry
from tests.support.cli import ROOT, cli_env, run_cli
from tests.support.servers import free_port, running
from tooling import synth
from tooling.synth_tables import SECTORS

pytestmark = pytest.mark.slow

SHOP = "M : Magasins de vente, centres commerciaux"
SHIFTED_FEATURES = {"secteur_activite", "surface_utile", "surface_shon", "categorie_erp"}
SENT = 600
CHUNK = 100
PREDICT_TOKEN = "drift-predict-token-8c41e2"


def shifted_weights() -> dict[str, float]:
    """The generator's sector mix of labelled records, with « M » at 90 %."""
    weights = {name: counts[0] + counts[1] for name, (counts, _, _) in SECTORS.items()}
    weights[SHOP] = 9 * sum(weight for name, weight in weights.items() if name != SHOP)
    return weights


def shift() -> dict:
    """The generator's arguments for the shifted distribution."""
    return {"sector_weights": shifted_weights(), "surface_scale": 3.0}


def as_json_records(frame: pd.DataFrame) -> list[dict]:
    """Record fields as the API takes them: snake_case, None when missing."""
    fields = frame[list(RECORD_FIELDS)].astype(object)
    return [
        {name: None if pd.isna(value) else value for name, value in row.items()}
        for row in fields.to_dict("records")
    ]


@contextmanager
def api(settings: Settings, log, **env: str):
    """The API on a free loopback port, logging its predictions; yields its URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "uvicorn", "api.main:app", "--host", "127.0.0.1"]
    # A short flush interval so the test sees its predictions within a second.
    env = {**cli_env(settings), "DPE_LOG_FLUSH_S": "0.2", **env}
    with running([*command, "--port", str(port)], f"{url}/health", log, env, 60, ROOT):
        yield url


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """(settings, API URL, training dataset version): a champion served and logging, to
    clients with its /predict token (their traffic is judged whole)."""
    work = tmp_path_factory.mktemp("drift-api")
    settings = Settings(
        _env_file=None,
        home=work / "home",
        mlflow_tracking_uri=f"sqlite:///{work / 'mlflow.db'}",
    )
    source = synth.write_csv(work / "training.csv", 3_000, seed=3)
    version = ingest(settings, source=source)["dataset_version"]
    run = train.train(settings, "building-only", "logreg", search="none")
    registry.promote(settings, run["run_id"])
    with api(settings, work / "api.log", DPE_PREDICT_TOKEN=PREDICT_TOKEN) as url:
        yield settings, url, version


@pytest.fixture(scope="module")
def open_api(served, tmp_path_factory):
    """The same champion and log, served by an API that takes no token: anyone's traffic."""
    settings, _, _ = served
    with api(settings, tmp_path_factory.mktemp("open-api") / "api.log") as url:
        yield url


def send(url: str, records: list[dict], settings: Settings, token=PREDICT_TOKEN) -> str:
    """POST the records to the API; returns the window start (ISO) once all are logged."""
    since = datetime.now(UTC).isoformat()
    before = len(read_predictions(settings))
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with httpx.Client(base_url=url, timeout=30, headers=headers) as client:
        for start in range(0, len(records), CHUNK):
            response = client.post("/predict", json={"records": records[start : start + CHUNK]})
            response.raise_for_status()
    deadline = time.monotonic() + 20
    while len(read_predictions(settings)) < before + len(records):
        assert time.monotonic() < deadline, "the API did not log every prediction"
        time.sleep(0.1)
    return since


def test_a_resample_of_the_training_data_is_not_flagged(served):
    settings, url, version = served
    training = labelled_rows(load_dataset(settings, version)[1])
    resample = training.sample(SENT, replace=True, random_state=7)
    since = send(url, as_json_records(resample), settings)

    report = drift_report(settings, since=since)
    assert report["rows"]["current"] == SENT and not report["too_little_data"]
    assert report["reference_version"] == version
    flagged = {name for name, result in report["features"].items() if result["drift"]}
    assert flagged == set(), {n: report["features"][n]["psi"] for n in flagged}
    assert not report["drift"] and report["verdict"] == "no drift"
    assert not report["label_shift"]["drift"]
    assert {c["source"] for c in report["volume"]["counts"]} == {"api"}


def test_shifted_records_are_flagged_on_exactly_the_shifted_features(served):
    settings, url, _ = served
    shifted = labelled_rows(clean(synth.generate_records(900, seed=12, **shift()))).head(SENT)
    since = send(url, as_json_records(shifted), settings)

    report = drift_report(settings, since=since)
    assert report["rows"]["current"] == SENT
    flagged = {name for name, result in report["features"].items() if result["drift"]}
    assert flagged == SHIFTED_FEATURES
    assert report["drift"] and sorted(report["drifting_features"]) == sorted(SHIFTED_FEATURES)
    for name in SHIFTED_FEATURES:  # both conditions hold, with room to spare
        assert report["features"][name]["psi"] > 1.2 * settings.drift_psi_threshold
        assert report["features"][name]["p_value"] < settings.drift_p_value / 100

    # The command line says the same, in the interface's shape.
    code, payload, stderr = run_cli("drift", "--since", since, env=cli_env(settings))
    assert code == 0, stderr
    assert payload["drift"] is True
    assert {name for name, f in payload["features"].items() if f["drift"]} == SHIFTED_FEATURES
    for name, result in payload["features"].items():
        assert result["score"] == pytest.approx(report["features"][name]["psi"])
        assert "bins" not in result


def test_too_little_data_is_said_plainly(served):
    settings, url, _ = served
    records = as_json_records(clean(synth.generate_records(300, seed=12, **shift())))[:10]
    since = send(url, records, settings)
    code, payload, stderr = run_cli("drift", "--since", since, env=cli_env(settings))
    assert code == 0, stderr
    assert payload["too_little_data"] is True and payload["drift"] is False
    assert payload["verdict"] == "too little data"
    assert "10 current rows" in payload["message"]
    assert not any(f["drift"] for f in payload["features"].values())


def test_a_dataset_version_is_judged_on_the_records_it_added(served, tmp_path):
    settings, _, version = served
    # The training version has no predecessor: all its records are "added", and match.
    code, payload, stderr = run_cli("drift", "--dataset", version, env=cli_env(settings))
    assert code == 0, stderr
    assert payload["drift"] is False and payload["window"]["kind"] == "dataset"

    source = synth.write_csv(tmp_path / "shifted.csv", 900, seed=21, **shift())
    added = ingest(settings, source=source)["dataset_version"]
    code, payload, stderr = run_cli("drift", "--dataset", added, env=cli_env(settings))
    assert code == 0, stderr
    flagged = {name for name, f in payload["features"].items() if f["drift"]}
    assert flagged == SHIFTED_FEATURES
    assert payload["rows"]["current"] < 900  # only the added records, labelled and valid
    assert payload["label_shift"] is None and payload["volume"] is None


def test_one_building_sent_again_and_again_is_not_called_drift(served):
    """Issue 15.7: a client repeating one request is not a sample of buildings."""
    settings, url, _ = served
    shifted = as_json_records(clean(synth.generate_records(300, seed=12, **shift())))
    since = send(url, shifted[:1] * SENT, settings)
    report = drift_report(settings, since=since)
    assert report["rows"]["current"] == SENT and not report["too_little_data"]
    assert report["drift"] is False and report["verdict"] == "not a random sample"
    assert report["sample_warning"] == report["message"]
    assert f"the {SENT} current rows hold 1 distinct records" in report["message"]
    assert not any(f["drift"] for f in report["features"].values())


def test_drift_of_one_source_only(served):
    settings, url, _ = served
    since = send(url, as_json_records(clean(synth.generate_records(80, seed=2))), settings)
    code, payload, stderr = run_cli(
        "drift", "--since", since, "--source", "cli", env=cli_env(settings)
    )
    assert code == 0, stderr
    assert payload["rows"]["current"] == 0 and payload["window"]["source"] == "cli"
    api_only = drift_report(settings, since=since, source="api")
    assert (
        api_only["rows"]["current"] == 80 == drift_report(settings, since=since)["rows"]["current"]
    )
    code, _, stderr = run_cli("drift", "--source", "nowhere", env=cli_env(settings))
    assert code == 2 and "invalid choice" in stderr


def test_one_client_without_a_token_cannot_make_drift_alone(served, open_api):
    """Issue 24.18: 600 shifted records in 6 requests from one client anyone could be made
    drift on 16 features. It counts for DPE_DRIFT_ROWS_PER_HOST rows; asked for by name, it
    is judged whole."""
    settings, _, _ = served
    shifted = labelled_rows(clean(synth.generate_records(900, seed=12, **shift()))).head(SENT)
    since = send(open_api, as_json_records(shifted), settings, token=None)
    report = drift_report(settings, since=since)
    judged = settings.drift_rows_per_host
    assert report["rows"]["current"] == judged and report["rows"]["left_out"] == SENT - judged
    assert not report["drift"] and report["verdict"] == "too little data"
    assert "DPE_DRIFT_ROWS_PER_HOST" in report["message"]
    assert sum(c["count"] for c in report["volume"]["counts"]) == SENT  # the flood shows
    by_name = drift_report(settings, since=since, client="host:127.0.0.1")
    assert by_name["rows"]["current"] == SENT and by_name["drift"]
