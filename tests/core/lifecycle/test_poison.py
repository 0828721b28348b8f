"""The issue's label-flip increment against a real MLflow server (issue 24, item 4): every
record of the real sample sent again with its label one class worse. The gate refuses it
with its reasons, the champion stays, and what the next pass trains on is the labels as
they were, not the flipped ones (read as training reads them: no third pass)."""

import pandas as pd
import pytest

from core.config import Settings
from core.data import quarantine, warehouse
from tests.support.cli import run_cli

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

    # What the next pass trains on (read as `train` reads it, without a third pass): the
    # sample's labels as they were; the flipped ones stay quarantined.
    settings = Settings(_env_file=None, home=tmp_path / "home")
    _, current = warehouse.load_dataset(settings, refused["dataset_version"])
    _, original = warehouse.load_dataset(settings, first["dataset_version"])

    def labels(frame):
        return frame.sort_values("n_dpe")["etiquette_dpe"].fillna("").to_numpy()

    training = quarantine.for_training(settings, current)
    assert len(training) == len(original) == len(current)
    assert (labels(current) != labels(original)).sum() == changed  # held, not trained on
    assert (labels(training) == labels(original)).all()
    code, history, _ = run_cli("pipeline", "--history", env=env)
    assert [run["decision"] for run in history["runs"]] == ["refused_data", "first_champion"]
