"""core.train: every family trains and logs a complete MLflow run, baselines on the same
split, searches, progress, errors, the CLI, and the must-show comparison on the real
sample. (Training against a real MLflow server: tests/core/test_registry.py.)"""

import json

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from core import evaluate, scales
from core.errors import DpeError
from core.feature_sets import FEATURE_SETS
from core.features import RecordEncoder
from core.models import (
    RANDOM_CANDIDATES,
    ScaleClassifier,
    build_pipeline,
    encoded_scale_layout,
    label_index_from_proba,
    median_label_index,
)
from core.schema import LABELS
from core.train import labelled_rows, train
from tests.conftest import cli_env, run_cli
from tests.training import fast_train, home_with_data

HEADLINE = {"accuracy", "macro_f1", "balanced_accuracy", "log_loss"}


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return home_with_data(tmp_path_factory.mktemp("train"))


def logged(settings, run_id):
    client = MlflowClient(settings.tracking_uri)
    return client, client.get_run(run_id)


def artifact_paths(client, run_id, path=None) -> set[str]:
    found = set()
    for item in client.list_artifacts(run_id, path):
        found |= artifact_paths(client, run_id, item.path) if item.is_dir else {item.path}
    return found


@pytest.mark.parametrize("model", ["rules", "logreg", "rf", "hgb", "scale"])
def test_each_family_trains_and_logs_a_complete_run(home, model):
    result = fast_train(home, model, search="grid")
    metrics = result["metrics"]
    assert set(metrics) >= HEADLINE
    assert 0 <= metrics["accuracy"] <= 1 and np.isfinite(metrics["log_loss"])
    assert {f"recall_{label}" for label in LABELS} <= set(metrics)  # imbalance visible
    # With the consumption, the rule baseline is scored on the same split.
    assert {"baseline_rules_accuracy", "baseline_rules_macro_f1"} <= set(metrics)
    # ... and how often raising only the consumption gives a better label is measured.
    assert 0 <= metrics["monotonicity_violations"] <= 1
    if model in ("rules", "scale"):  # monotone by construction
        assert metrics["monotonicity_violations"] == 0

    client, run = logged(home, result["run_id"])
    assert run.data.tags["feature_set"] == "with-consumption"
    assert run.data.tags["model_family"] == model
    assert run.data.tags["label_leaking"] == "true"
    assert run.data.tags["dataset_version"] == result["dataset_version"]
    assert len(run.data.tags.get("git_commit", "x" * 40)) == 40
    params = run.data.params
    assert params["model"] == model and params["seed"] == "42" and params["test_size"] == "0.2"
    assert params["search"] == ("none" if model == "rules" else "grid")
    assert run.data.metrics["macro_f1"] == pytest.approx(metrics["macro_f1"])
    assert "monotonicity_violations" in run.data.metrics
    (dataset,) = run.inputs.dataset_inputs
    assert dataset.dataset.digest == result["dataset_version"]

    artifacts = artifact_paths(client, result["run_id"])
    assert {"figures/confusion_matrix.png", "figures/field_importance.png"} <= artifacts
    assert ("search/cv_results.csv" in artifacts) == (model != "rules")
    if model != "rules":
        assert params["cv"] == "2" and any(name.startswith("best.") for name in params)


def test_the_logged_model_takes_records_with_every_field_optional(home):
    result = fast_train(home, "rf")
    info = mlflow.models.get_model_info(result["model_uri"])
    inputs = info.signature.inputs
    assert inputs.input_names() == list(FEATURE_SETS["with-consumption"].fields)
    assert not any(column.required for column in inputs.inputs)
    model = mlflow.pyfunc.load_model(result["model_uri"])
    # Missing fields and None: fine. (A category column holding only NaN is typed float
    # by pandas, which MLflow's schema check refuses: JSON clients send null, not NaN.)
    sparse = pd.DataFrame(
        [
            {"conso_kwhep_m2_an": 80.0, "secteur_activite": "GHW : Bureaux"},
            {"secteur_activite": None},
        ]
    )
    assert set(model.predict(sparse)) <= set(LABELS)


def test_building_only_is_compared_with_the_majority_label(home):
    result = fast_train(home, "rf", feature_set="building-only")
    metrics = result["metrics"]
    assert {"baseline_majority_accuracy", "baseline_majority_macro_f1"} <= set(metrics)
    assert not any(name.startswith("baseline_rules") for name in metrics)
    assert "monotonicity_violations" not in metrics  # no consumption to raise
    _, run = logged(home, result["run_id"])
    assert run.data.tags["label_leaking"] == "false"
    assert result["label_leaking"] is False


def test_a_random_search_logs_its_candidates_and_reports_progress(home):
    steps = []
    result = fast_train(home, "logreg", search="random", progress=lambda f, m: steps.append(f))
    client, _ = logged(home, result["run_id"])
    table = client.download_artifacts(result["run_id"], "search/cv_results.csv")
    assert len(pd.read_csv(table)) == RANDOM_CANDIDATES
    assert "classify__logreg__C" in result["best_params"]
    assert steps[0] == 0.0 and steps[-1] == 1.0 and steps == sorted(steps)
    assert len(steps) >= RANDOM_CANDIDATES + 4  # one step per candidate at least


def test_the_experiment_keeps_its_artifacts_under_dpe_home(home):
    experiment = MlflowClient(home.tracking_uri).get_experiment_by_name(home.experiment_name)
    assert experiment.artifact_location == home.mlflow_artifacts_dir.resolve().as_uri()


def test_the_rule_model_takes_dicts_or_a_frame_and_building_only_ignores_consumption(home):
    records = [
        {"secteur_activite": "W : Administrations, banques, bureaux", "conso_kwhep_m2_an": 120},
        {"secteur_activite": "U : Établissements de soins", "conso_kwhep_m2_an": 120},
        {"conso_kwhep_m2_an": None},
    ]
    y = ["A", "A", "B"]  # A: the most frequent label, answered without a consumption
    model = build_pipeline("rules", "with-consumption").fit(pd.DataFrame(records), y)
    assert model.predict(records).tolist() == ["C", "B", "A"]
    assert model.predict(pd.DataFrame(records)).tolist() == ["C", "B", "A"]
    assert model.predict(records[0]).tolist() == ["C"]
    blind = build_pipeline("rules", "building-only").fit(pd.DataFrame(records), ["B", "B", "A"])
    assert blind.predict(records).tolist() == ["B", "B", "B"]


@pytest.mark.filterwarnings("ignore:All-NaN slice")  # the fields these records lack
def test_the_scale_model_learns_which_scale_applies_then_applies_it():
    """Offices labelled on the « autres » scale, shops on the « centres commerciaux » one:
    the model learns which building follows which scale, and the scales do the rest."""
    rng = np.random.default_rng(0)
    sectors = ["W : Administrations, banques, bureaux", "M : Magasins de vente"]
    records, y = [], []
    for sector in sectors:
        family = "autres_batiments" if sector.startswith("W") else "centre_commercial"
        for conso in rng.uniform(5, 600, 60):
            records.append({"secteur_activite": sector, "conso_kwhep_m2_an": conso})
            y.append(scales.label_for(conso, family))
    model = build_pipeline("scale", "with-consumption").fit(pd.DataFrame(records), y)
    assert model.predict(records).tolist() == y
    probe = [{"secteur_activite": s, "conso_kwhep_m2_an": 100.0} for s in sectors]
    # 100 kWhEP/m²/an: C on the « autres » scale (90 < 100 <= 170), B on the other one.
    assert model.predict(probe).tolist() == ["C", "B"]
    median = sorted(y)[(len(y) - 1) // 2]  # without a consumption: the training labels'
    assert model.predict([{"secteur_activite": "W : bureaux"}]).tolist() == [median]
    proba = model.predict_proba(probe + [{}])
    assert proba.shape == (3, 7) and np.allclose(proba.sum(axis=1), 1)


def test_the_scale_model_predicts_the_median_label_which_the_argmax_is_not():
    # A building 40 % on a scale where it is D, 30 % E and 30 % F on two others: the
    # argmax says D (0.4), the median E (D 0.4, then 0.7 by E).
    proba = np.array([[0, 0, 0, 0.4, 0.3, 0.3, 0]])
    assert median_label_index(proba).tolist() == [4]
    assert label_index_from_proba(ScaleClassifier(), proba).tolist() == [4]
    assert label_index_from_proba(build_pipeline("rf", "building-only"), proba).tolist() == [3]
    # Ties: exactly 1/2 by C is C.
    assert median_label_index(np.array([[0, 0.25, 0.25, 0.5, 0, 0, 0]])).tolist() == [2]


def test_the_scale_model_reads_the_building_columns_and_the_scale_labels(home):
    from core import warehouse

    _, frame = warehouse.load_dataset(home)
    X, _ = labelled_rows(frame, "with-consumption")
    names = RecordEncoder("with-consumption").fit(X).get_feature_names_out()
    building, labels = encoded_scale_layout(len(names))
    blind = RecordEncoder("building-only").fit(X).get_feature_names_out()
    assert list(names[labels]) == [f"rule_label__{family}" for family in scales.FAMILIES]
    families = [f"rule_family={family}" for family in scales.FAMILIES]
    assert list(names[building]) == [*blind, *families]  # nothing about the consumption
    with pytest.raises(ValueError, match="RecordEncoder"):
        ScaleClassifier().fit(RecordEncoder("building-only").fit(X).transform(X), ["A"] * len(X))


def test_a_label_that_gets_better_as_the_consumption_rises_is_caught():
    class Dented:  # B, then A between 100 and 200 kWhEP/m²/an for the second building only
        def predict(self, frame):
            conso, dented = frame["conso_kwhep_m2_an"], frame["categorie_erp"] == "dented"
            return np.where(dented & conso.between(100, 200), "A", np.where(conso < 300, "B", "C"))

    buildings = [{"categorie_erp": "flat"}, {"categorie_erp": "dented"}]
    assert evaluate.non_monotone(Dented(), buildings).tolist() == [False, True]
    assert evaluate.monotonicity_violations(Dented(), buildings) == 0.5
    assert evaluate.monotonicity_violations(Dented(), []) == 0.0


def test_the_scale_model_needs_the_consumption(home):
    with pytest.raises(DpeError, match="scale model reads the consumption.*with-consumption"):
        train(home, "building-only", "scale")
    with pytest.raises(DpeError, match="scale model reads the consumption"):
        build_pipeline("scale", "building-only")


def test_bad_inputs_are_one_line_errors(home):
    with pytest.raises(DpeError, match="unknown dataset version 'nope'"):
        fast_train(home, "rules", dataset_version="nope")
    with pytest.raises(DpeError, match="unknown model 'svm'"):
        train(home, "with-consumption", "svm")
    frame = pd.DataFrame(
        {"etiquette_dpe": ["A", "A", "B"], "reject_reason": [None, None, None]}
    ).reindex(columns=["etiquette_dpe", "reject_reason", *FEATURE_SETS["building-only"].fields])
    with pytest.raises(DpeError, match=r"too few labelled rows.*'B': 1"):
        labelled_rows(frame, "building-only")


def test_rejected_and_unlabelled_rows_are_left_out():
    frame = pd.DataFrame(
        {
            "etiquette_dpe": ["A", "A", "B", "B", None, "I", "C"],
            "reject_reason": [None, None, None, None, None, None, "surface_utile must be > 0"],
        }
    ).reindex(columns=["etiquette_dpe", "reject_reason", *FEATURE_SETS["building-only"].fields])
    X, y = labelled_rows(frame, "building-only")
    assert y.tolist() == ["A", "A", "B", "B"]
    assert list(X.columns) == list(FEATURE_SETS["building-only"])


@pytest.mark.slow
def test_cli_trains_then_lists_the_run(home):
    env = cli_env(home) | {"DPE_EXPERIMENT_NAME": home.experiment_name}
    code, result, stderr = run_cli(
        "train", "--features", "building-only", "--model", "logreg", "--search", "none", env=env
    )
    assert code == 0, stderr
    assert {"run_id", "metrics", "dataset_version", "experiment"} <= set(result)
    assert set(result["metrics"]) >= HEADLINE
    assert "train [100%]" in stderr  # progress goes to stderr, stdout is one JSON object
    code, listed, stderr = run_cli("runs", "--features", "building-only", env=env)
    assert code == 0, stderr
    assert result["run_id"] in [run["run_id"] for run in listed["runs"]]
    assert all(run["features"] == "building-only" for run in listed["runs"])


def test_an_unreachable_server_is_a_one_line_error(home):
    settings = home.model_copy(update={"mlflow_tracking_uri": "http://127.0.0.1:9"})
    with pytest.raises(DpeError, match=r"MLflow server http://127.0.0.1:9 unreachable"):
        fast_train(settings, "rules")


@pytest.mark.real_data
@pytest.mark.slow
def test_on_the_real_sample_learned_models_beat_their_baselines(tmp_path, sample_csv):
    settings = home_with_data(tmp_path, source=sample_csv)
    leaking = fast_train(settings, "rf", params={"classify__n_estimators": 100})
    metrics = leaking["metrics"]
    assert metrics["accuracy"] > metrics["baseline_rules_accuracy"] + 0.05
    assert metrics["macro_f1"] > metrics["baseline_rules_macro_f1"] + 0.05
    # The scale model beats the rules too, and stays monotone in the consumption.
    scale = fast_train(settings, "scale", params={})["metrics"]
    assert scale["macro_f1"] > scale["baseline_rules_macro_f1"] + 0.05
    assert scale["monotonicity_violations"] == 0
    blind = fast_train(settings, "rf", "building-only", params={"classify__n_estimators": 100})
    metrics = blind["metrics"]
    assert metrics["macro_f1"] > metrics["baseline_majority_macro_f1"] + 0.1
    print(
        json.dumps(
            {"with-consumption": leaking["metrics"], "scale": scale, "building-only": metrics}
        )
    )
