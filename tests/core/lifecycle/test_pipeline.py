"""The lifecycle pass end to end on the CLI, against a local ADEME API serving increments,
a real MLflow server and the test's own DPE_HOME; and the gate's rule on its own."""

import random
from urllib.parse import unquote

import pandas as pd
import pytest
from mlflow import MlflowClient

from core.lifecycle.pipeline import gate
from tests.support.cli import run_cli
from tests.support.sources import page_server
from tooling.synth import generate_records, to_api_pages

DATE_COLUMNS = ("Date_réception_DPE", "Date_établissement_DPE", "Date_visite_diagnostiqueur")
BUILDING_ONLY = {"DPE_PIPELINE_FEATURES": "building-only", "DPE_PIPELINE_MODEL": "logreg"}


def increment(rows: int, seed: int, years_later: int = 0, **values: str) -> list[dict]:
    """API pages of `rows` generated records, dated `years_later` after the generator's
    dates (so each increment is newer than the one before), with `values` set in all."""
    frame = generate_records(rows, seed=seed)
    for column in DATE_COLUMNS:
        dates = pd.to_datetime(frame[column], errors="coerce") + pd.DateOffset(years=years_later)
        frame[column] = dates.dt.strftime("%Y-%m-%d").where(dates.notna(), None)
    for column, value in values.items():
        frame[column] = value
    return to_api_pages(frame, page_size=250)


@pytest.fixture
def env(tmp_path, mlflow_server) -> dict:
    return {
        "DPE_HOME": str(tmp_path / "home"),
        "MLFLOW_TRACKING_URI": mlflow_server,
        "DPE_EXPERIMENT_NAME": f"pipeline-{tmp_path.name}",
        "DPE_REGISTERED_MODEL_NAME": f"pipeline-{tmp_path.name}",
        "DPE_PIPELINE_EXPERIMENT": f"lifecycle-{tmp_path.name}",
    }


def run_pass(env: dict, source: str, **overrides: str) -> dict:
    code, answer, stderr = run_cli("pipeline", "--source", source, env={**env, **overrides})
    assert code == 0, stderr[-2000:]
    assert set(answer) >= {
        "decision", "dataset_version", "added", "rejected", "window", "scores",
        "challenger_run_id", "champion_before", "champion_after", "drift",
    }  # fmt: skip
    return answer


def test_passes_from_first_champion_to_promoted_kept_refused(env, mlflow_server):
    with page_server(increment(900, seed=1)) as api:
        first = run_pass(env, api.url, **BUILDING_ONLY)
        assert first["decision"] == "first_champion", first["reasons"]
        assert first["added"] == 900 and first["champion_before"] is None
        assert first["champion_after"]["run_id"] == first["challenger_run_id"]
        assert first["window"]["rows"] > 0 and first["window"]["from"] <= first["window"]["to"]
        assert first["scores"]["challenger"]["macro_f1"] > first["scores"]["rules"]["macro_f1"]

        requests_before = len(api.requests)
        repeat = run_pass(env, api.url, **BUILDING_ONLY)
        assert repeat["decision"] == "no_new_data"
        assert repeat["added"] == 0 and repeat["challenger_run_id"] is None
        assert repeat["dataset_version"] == first["dataset_version"]
        asked = unquote(api.requests[requests_before])  # the watermark went to the API
        assert f"Date_réception_DPE_gte={first_max_reception(first)}" in asked, asked

        # A challenger that cannot clear the margin: the champion stays.
        api.pages = increment(400, seed=2, years_later=3)
        kept = run_pass(env, api.url, DPE_GATE_MARGIN="0.5", **BUILDING_ONLY)
        assert kept["decision"] == "kept", kept["reasons"]
        assert kept["added"] == 400
        assert kept["champion_before"] == kept["champion_after"] == first["champion_after"]
        assert kept["scores"]["champion"] is not None

        # With the consumption, the challenger beats the building-only champion by far.
        api.pages = increment(400, seed=3, years_later=6)
        promoted = run_pass(env, api.url)
        assert promoted["decision"] == "promoted", promoted["reasons"]
        scores = promoted["scores"]
        assert scores["challenger"]["macro_f1"] >= scores["champion"]["macro_f1"] + 0.005
        assert promoted["champion_before"] == first["champion_after"]
        assert promoted["champion_after"]["run_id"] == promoted["challenger_run_id"]
        assert promoted["window"]["from"] > first["window"]["to"]  # the newest records

        # Most new records fail validation: refused, no challenger, the champion stays.
        api.pages = increment(300, seed=4, years_later=9, **{"Surface_utile": "-5"})
        refused = run_pass(env, api.url)
        assert refused["decision"] == "refused_data"
        assert refused["rejected"] == 300 and refused["challenger_run_id"] is None
        assert refused["quality"]["rejected_by_code"] == {"below_minimum": 300}
        assert any(  # the gate says how many rows each code rejected
            "rejected by validation" in reason and reason.endswith(": below_minimum 300")
            for reason in refused["reasons"]
        ), refused["reasons"]
        assert refused["champion_after"] is None  # nothing was decided about the champion

    code, history, stderr = run_cli("pipeline", "--history", env=env)
    assert code == 0, stderr[-2000:]
    decisions = [run["decision"] for run in history["runs"]]
    assert decisions == ["refused_data", "promoted", "kept", "no_new_data", "first_champion"]

    client = MlflowClient(mlflow_server)
    run = client.get_run(promoted["run_id"])
    assert run.data.tags["decision"] == "promoted"
    assert run.data.tags["dataset_version"] == promoted["dataset_version"]
    assert run.data.metrics["challenger_macro_f1"] == pytest.approx(
        scores["challenger"]["macro_f1"]
    )
    assert "drift_report.json" in {a.path for a in client.list_artifacts(run.info.run_id)}


def first_max_reception(answer: dict) -> str:
    """The newest reception date of the first increment (what the watermark must be)."""
    frame = generate_records(900, seed=1)
    return pd.to_datetime(frame["Date_réception_DPE"]).max().date().isoformat()


def test_a_file_source_adds_only_what_is_new(env, tmp_path, sample_csv):
    first = run_pass(env, str(sample_csv))
    assert first["decision"] == "first_champion", first["reasons"]
    again = run_pass(env, str(sample_csv))
    assert again["decision"] == "no_new_data" and again["added"] == 0


def test_the_gate_never_promotes_a_challenger_worse_than_the_champion():
    rng = random.Random(7)
    for _ in range(2000):
        challenger, champion, rules = ({"macro_f1": rng.random()} for _ in range(3))
        margin = rng.choice([0.0, 0.005, 0.05])
        decision, why = gate(challenger, champion, rules, "macro_f1", margin)
        if challenger["macro_f1"] < champion["macro_f1"] + margin:
            assert decision == "kept", why
        if challenger["macro_f1"] <= rules["macro_f1"]:
            assert decision == "kept", why


def test_the_gate_decides_first_promoted_and_kept():
    def scores(value: float) -> dict:
        return {"macro_f1": value}

    assert gate(scores(0.8), None, scores(0.7), "macro_f1", 0.01)[0] == "first_champion"
    assert gate(scores(0.6), None, scores(0.7), "macro_f1", 0.01)[0] == "kept"
    assert gate(scores(0.8), scores(0.79), scores(0.7), "macro_f1", 0.01)[0] == "promoted"
    assert gate(scores(0.8), scores(0.795), scores(0.7), "macro_f1", 0.01)[0] == "kept"
    # Equal to the champion with no margin is not better: kept.
    assert gate(scores(0.8), scores(0.8), scores(0.7), "macro_f1", 0.0)[0] == "kept"
