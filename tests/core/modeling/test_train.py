"""core.modeling.train: every family trains and logs a complete MLflow run, baselines on the same
split, searches, progress, errors, the CLI, and the must-show comparison on the real
sample. (Training against a real MLflow server: tests/core/test_registry.py.)"""

import json
import logging
import threading
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from core.data import warehouse
from core.data.feature_sets import FEATURE_SETS
from core.data.schema import LABELS
from core.errors import DpeError
from core.modeling import evaluate, scales
from core.modeling.backtest import MEAN_METRICS, backtest
from core.modeling.features import RecordEncoder
from core.modeling.models import (
    DEFAULT_MODELS,
    GRIDS,
    RANDOM_CANDIDATES,
    ScaleClassifier,
    build_pipeline,
    encoded_scale_layout,
    label_index_from_proba,
    median_label_index,
)
from core.modeling.splits import split_rows
from core.modeling.train import held_out, labelled_rows, train
from core.tracking import registry
from core.tracking.model_format import TRUSTED_TYPES
from core.tracking.registry import list_runs
from tests.support.champion import labelled
from tests.support.cli import cli_env, run_cli
from tests.support.training import fast_train, home_with_data
from tooling.synth import generate_records

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


UNTUNED = ("rules", "sector-scale")  # nothing to search
MONOTONE = ("rules", "sector-scale", "scale")  # by construction


@pytest.mark.parametrize("model", ["rules", "sector-scale", "logreg", "rf", "hgb", "scale"])
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
    if model in MONOTONE:
        assert metrics["monotonicity_violations"] == 0
    assert metrics["beats_baseline"] == float(
        metrics["macro_f1"] > metrics["baseline_rules_macro_f1"]
    )

    client, run = logged(home, result["run_id"])
    assert run.data.tags["feature_set"] == "with-consumption"
    assert run.data.tags["model_family"] == model
    assert run.data.tags["label_leaking"] == "true"
    assert run.data.tags["dataset_version"] == result["dataset_version"]
    assert len(run.data.tags.get("git_commit", "x" * 40)) == 40
    params = run.data.params
    assert params["model"] == model and params["seed"] == "42" and params["test_size"] == "0.2"
    assert params["search"] == ("none" if model in UNTUNED else "grid")
    # The default split: the newest records test, and the run says so.
    assert params["split"] == result["split"] == "time"
    assert params["test_from"] == result["test_from"] <= result["test_to"] == params["test_to"]
    assert int(params["rows"]) == result["train_rows"] + result["test_rows"]
    assert run.data.metrics["macro_f1"] == pytest.approx(metrics["macro_f1"])
    assert "monotonicity_violations" in run.data.metrics
    (dataset,) = run.inputs.dataset_inputs
    assert dataset.dataset.digest == result["dataset_version"]

    artifacts = artifact_paths(client, result["run_id"])
    expected = {"figures/confusion_matrix.png", "figures/field_importance.png"}
    assert expected | {"confusion_matrix.json"} <= artifacts  # the workbench's chart data
    assert ("search/cv_results.csv" in artifacts) == (model not in UNTUNED)
    if model not in UNTUNED:
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


def test_a_model_is_logged_as_skops_with_our_trusted_types_and_no_pickle_warning(
    home, capfd, caplog
):
    with caplog.at_level(logging.WARNING):
        result = fast_train(home, "hgb")
    said = capfd.readouterr().err + caplog.text  # MLflow's loggers write to stderr themselves
    assert "pickle" not in said.lower()
    flavor = mlflow.models.get_model_info(result["model_uri"]).flavors["sklearn"]
    assert flavor["serialization_format"] == "skops" and flavor["pickled_model"] == "model.skops"
    assert set(flavor["skops_trusted_types"]) == set(TRUSTED_TYPES)


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


def test_a_search_runs_with_a_progress_callback_that_cannot_be_pickled(home):
    """Issue 15.1: the Train page's callback holds Streamlit elements, which cannot be
    pickled into the search's worker processes. It is called from this process only."""
    lock = threading.Lock()  # cannot be pickled, like a Streamlit element
    steps = []

    def progress(fraction, message):
        with lock:
            steps.append(fraction)

    result = fast_train(home, "logreg", search="grid", progress=progress)
    assert result["search"] == "grid"
    assert steps[-1] == 1.0 and steps == sorted(steps)
    assert len(steps) >= len(GRIDS["logreg"]["classify__logreg__C"]) + 4


def test_the_time_split_tests_records_newer_than_every_training_record(home):
    _, frame = warehouse.load_dataset(home)
    held = held_out(frame, "with-consumption", "time", 0.2, 42)
    assert held.dates_train.max() < held.dates_test.min()
    assert len(held.y_test) / (len(held.y_test) + len(held.y_train)) == pytest.approx(0.2, abs=0.05)
    # CV inside the training part: each fold validates on records newer than it trained on.
    assert held.dates_train.is_monotonic_increasing
    for fitted, validated in held.folds(3, 42).split(held.X_train):
        assert held.dates_train.iloc[fitted].max() <= held.dates_train.iloc[validated].min()
    shuffled = held_out(frame, "with-consumption", "random", 0.2, 42)
    assert shuffled.dates_train.max() > shuffled.dates_test.min()  # times mixed


def test_a_random_split_stays_available_and_is_logged_as_such(home):
    result = fast_train(home, "rules", split="random")
    _, run = logged(home, result["run_id"])
    assert result["split"] == run.data.params["split"] == "random"


def test_records_of_a_single_date_cannot_be_split_by_time():
    X = pd.DataFrame({"surface_utile": range(10)})
    dates = pd.Series(pd.to_datetime(["2022-01-01"] * 10))
    with pytest.raises(DpeError, match="share one date.*--split random"):
        split_rows(X, np.array(list("AB") * 5), dates, "time", 0.2, 42)


def test_the_logged_model_carries_no_copy_of_the_code(home, tmp_path):
    """The model's classes come from the installed package, never from files in the run."""
    result = fast_train(home, "scale")
    folder = Path(mlflow.artifacts.download_artifacts(result["model_uri"], dst_path=tmp_path))
    assert not (folder / "code").exists()
    assert "code: code" not in (folder / "MLmodel").read_text()


def test_a_backtest_scores_consecutive_windows_next_to_the_rules(home):
    found = backtest(home, "with-consumption", "sector-scale", windows=3)
    assert [window.window for window in found.windows] == [1, 2, 3]
    for before, after in zip(found.windows, found.windows[1:], strict=False):
        assert before.test_to < after.test_from  # no date in two windows
        assert after.train_rows == before.train_rows + before.test_rows  # rolling origin
    assert found.mean_macro_f1 == pytest.approx(np.mean([w.macro_f1 for w in found.windows]))
    client, run = logged(home, found.run_id)
    assert run.data.tags["kind"] == "backtest"
    assert run.data.tags["model_family"] == "sector-scale"
    assert run.data.tags["feature_set"] == "with-consumption"
    assert set(MEAN_METRICS) <= set(run.data.metrics)
    assert run.data.metrics["rules_mean_macro_f1"] == pytest.approx(found.rules_mean_macro_f1)
    history = client.get_metric_history(found.run_id, "macro_f1")
    assert sorted(metric.step for metric in history) == [1, 2, 3]
    assert "figures/backtest.png" in artifact_paths(client, found.run_id)
    assert found.run_id not in set(list_runs(home)["run_id"])  # not a model to promote


def test_the_boosted_model_does_not_depend_on_the_seed():
    """Issue 12: early stopping scored each fit on a random tenth of the training rows, so
    the building-only macro-F1 on later records swung by +-0.03 with the seed alone."""
    X, y = labelled(generate_records(600, seed=5))
    seeds = [build_pipeline("hgb", "building-only", seed).fit(X, y) for seed in (0, 7)]
    probe = X.head(200)
    assert np.array_equal(seeds[0].predict_proba(probe), seeds[1].predict_proba(probe))


@pytest.mark.filterwarnings("ignore:All-NaN slice")
def test_the_sector_scale_model_learns_each_sectors_scale_and_takes_new_sectors():
    """Homes for the elderly (J) labelled on the « autres » scale rather than the one the
    regulation assigns them; offices (W) on theirs. New sectors are predicted, not refused."""
    rng = np.random.default_rng(0)
    records, y = [], []
    for sector, family in (
        ("J : Structures d’accueil pour personnes âgées", "autres_batiments"),
        ("W : Administrations, banques, bureaux", "bureau_administration_enseignement"),
    ):
        for conso in rng.uniform(5, 600, 40):
            records.append({"secteur_activite": sector, "conso_kwhep_m2_an": conso})
            y.append(scales.label_for(conso, family))
    records.append({"secteur_activite": "W : bureaux", "conso_kwhep_m2_an": 0.1})
    y.append("A")  # the placeholder: A on every scale, says nothing of the scale
    model = build_pipeline("sector-scale", "with-consumption").fit(pd.DataFrame(records), y)
    assert model.predict(records).tolist() == y
    seen = model.named_steps["encode"].known_values_["secteur_activite"]  # for serving's warnings
    assert seen == sorted({record["secteur_activite"] for record in records})
    chooser = model.named_steps["classify"]

    def most_used(sector: str) -> str:
        shares, _ = chooser.sector_shares(sector)
        return max(shares, key=shares.__getitem__)

    assert most_used("J : une autre orthographe") == "autres_batiments"  # by its code
    assert most_used("OA : Hôtels-restaurants d'altitude") == "occupation_continue"
    assert most_used("un secteur en texte libre") == scales.DEFAULT_FAMILY
    sectors = ["J : x", "OA : Hôtels-restaurants d'altitude", "PA : Plein air", None]
    probe = [{"secteur_activite": sector, "conso_kwhep_m2_an": 200.0} for sector in sectors]
    # 200 kWhEP/m²/an: D on « autres » (170 < 200 <= 270), B on « occupation continue ».
    assert model.predict(probe).tolist() == ["D", "B", "D", "D"]
    proba = model.predict_proba(probe + [{"secteur_activite": "J : x"}])
    assert np.allclose(proba.sum(axis=1), 1)
    assert [LABELS[i] for i in proba.argmax(axis=1)] == model.predict(probe + [{}]).tolist()
    counts = [y.count(label) for label in LABELS]  # without a consumption: the majority
    assert model.predict([{}]).tolist() == [LABELS[int(np.argmax(counts))]]


def test_the_experiment_keeps_its_artifacts_under_dpe_home(home):
    registry.experiment_id(home, registry.connect(home))  # as train() makes it
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
    assert list(X.columns) == list(FEATURE_SETS["building-only"].fields)


@pytest.mark.slow
def test_cli_trains_then_lists_the_run(home):
    env = cli_env(home) | {"DPE_EXPERIMENT_NAME": home.experiment_name}
    code, result, stderr = run_cli(
        "train", "--features", "building-only", "--model", "logreg", "--search", "none",
        "--split", "random", env=env,
    )  # fmt: skip
    assert code == 0, stderr
    assert {"run_id", "metrics", "dataset_version", "experiment"} <= set(result)
    assert result["split"] == "random" and result["test_from"] <= result["test_to"]
    assert set(result["metrics"]) >= HEADLINE
    assert "train [100%]" in stderr  # progress goes to stderr, stdout is one JSON object
    code, listed, stderr = run_cli("runs", "--features", "building-only", env=env)
    assert code == 0, stderr
    assert result["run_id"] in [run["run_id"] for run in listed["runs"]]
    assert all(run["features"] == "building-only" for run in listed["runs"])


@pytest.mark.slow
def test_cli_backtests_the_default_family(home):
    env = cli_env(home) | {"DPE_EXPERIMENT_NAME": home.experiment_name}
    code, result, stderr = run_cli(
        "backtest", "--features", "with-consumption", "--windows", "2", env=env
    )
    assert code == 0, stderr
    assert result["model"] == DEFAULT_MODELS["with-consumption"]
    assert len(result["windows"]) == 2 and set(MEAN_METRICS) <= set(result)
    assert "backtest [100%]" in stderr


def test_an_unreachable_server_is_a_one_line_error(home):
    settings = home.model_copy(update={"mlflow_tracking_uri": "http://127.0.0.1:9"})
    with pytest.raises(DpeError, match=r"MLflow server http://127.0.0.1:9 unreachable"):
        fast_train(settings, "rules")


@pytest.mark.real_data
@pytest.mark.slow
@pytest.mark.timeout(900)  # three trainings on the real sample, one with its back-test
def test_on_the_real_sample_the_default_family_beats_the_rules_on_later_records(
    tmp_path, sample_csv
):
    """Issue 12: trained on the past, scored on the newest records (time split, the
    default) and in the back-test, the default family beats the official rules."""
    settings = home_with_data(tmp_path, source=sample_csv)
    best = train(settings, "with-consumption", DEFAULT_MODELS["with-consumption"])
    metrics = best["metrics"]
    assert best["split"] == "time"
    assert metrics["macro_f1"] > metrics["baseline_rules_macro_f1"] + 0.05
    assert metrics["accuracy"] > metrics["baseline_rules_accuracy"] + 0.05
    assert metrics["beats_baseline"] == 1.0 and metrics["monotonicity_violations"] == 0
    # The back-test the training ran (its windows, the rules on the same windows).
    assert metrics["backtest_macro_f1"] > metrics["backtest_rules_macro_f1"] + 0.03
    assert metrics["backtest_accuracy"] > metrics["backtest_rules_accuracy"] + 0.03
    # The learned scale model beats the rules on later records too, and stays monotone.
    scale = fast_train(settings, "scale", params={})["metrics"]
    assert scale["macro_f1"] > scale["baseline_rules_macro_f1"]
    assert scale["monotonicity_violations"] == 0
    blind = fast_train(settings, DEFAULT_MODELS["building-only"], "building-only", params={})
    metrics = blind["metrics"]
    assert metrics["macro_f1"] > metrics["baseline_majority_macro_f1"] + 0.1
    print(json.dumps({"best": best["metrics"], "scale": scale, "building-only": metrics}))
