"""The issue's label-flip increment against a real MLflow server (issue 24, item 4): every
record of the real sample sent again with its label one class worse. The gate refuses it
with its reasons, the champion stays, and what the next pass trains on is the labels as
they were, not the flipped ones."""

import pandas as pd
import pytest

from tests.support.cli import run_cli
from tooling.synth import write_csv

LABELS = "ABCDEFG"


def flipped_sample(sample_csv, path):
    frame = pd.read_csv(sample_csv, dtype=str, keep_default_na=False)
    labelled = frame["Etiquette_DPE"].isin(list(LABELS))
    changed = int((labelled & (frame["Etiquette_DPE"] != "G")).sum())  # G stays G
    frame.loc[labelled, "Etiquette_DPE"] = frame.loc[labelled, "Etiquette_DPE"].map(
        lambda label: LABELS[min(LABELS.index(label) + 1, 6)]
    )
    frame.to_csv(path, index=False)
    return str(path), changed


def later_records(path) -> str:
    """Clean generated records received after the sample's (a year after the generator's)."""
    frame = pd.read_csv(write_csv(path, 400, seed=21), dtype=str, keep_default_na=False)
    for column in ("Date_réception_DPE", "Date_établissement_DPE", "Date_visite_diagnostiqueur"):
        dates = pd.to_datetime(frame[column], errors="coerce") + pd.DateOffset(years=1)
        frame[column] = dates.dt.strftime("%Y-%m-%d").fillna("")
    frame.to_csv(path, index=False)
    return str(path)


@pytest.mark.slow
@pytest.mark.timeout(1200)  # several passes, each a CLI process training
def test_the_label_flip_increment_is_refused_and_kept_out_of_training(
    tmp_path, mlflow_server, sample_csv
):
    env = {
        "DPE_HOME": str(tmp_path / "home"),
        "MLFLOW_TRACKING_URI": mlflow_server,
        "DPE_EXPERIMENT_NAME": f"poison-{tmp_path.name}",
        "DPE_REGISTERED_MODEL_NAME": f"poison-{tmp_path.name}",
        "DPE_PIPELINE_EXPERIMENT": f"poison-pass-{tmp_path.name}",
    }

    def run_pass(source: str) -> dict:
        code, answer, stderr = run_cli("pipeline", "--source", source, env=env)
        assert code == 0, stderr[-2000:]
        return answer

    first = run_pass(str(sample_csv))
    assert first["decision"] == "first_champion", first["reasons"]

    flipped, changed = flipped_sample(sample_csv, tmp_path / "flip_all.csv")
    refused = run_pass(flipped)
    assert refused["decision"] == "refused_data"
    assert (refused["updated"], refused["quarantined"]) == (changed, changed)
    reasons = " | ".join(refused["reasons"])
    assert "100% records whose label changed while their consumption did not" in reasons
    assert "class on none of the official scales" in reasons
    assert "the rule baseline's macro_f1 on the window" in reasons
    assert refused["challenger_run_id"] is None and refused["champion_after"] is None

    # New clean records: the next pass trains on the sample's labels as they were (the
    # flipped ones stay quarantined), so its challenger is as good as the first.
    later = run_pass(later_records(tmp_path / "later.csv"))
    assert later["decision"] in ("kept", "promoted"), later["reasons"]
    assert later["added"] == 400
    assert later["scores"]["challenger"]["macro_f1"] > 0.8, later["scores"]
    code, history, _ = run_cli("pipeline", "--history", env=env)
    assert [run["decision"] for run in history["runs"]][1:] == ["refused_data", "first_champion"]
