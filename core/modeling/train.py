"""Training: one model family on one feature set, searched, evaluated, logged to MLflow.

`train(settings, feature_set, model, ...)` takes the labelled, valid rows of a dataset
version, holds out the newest records for testing (`split="time"`, the default; or a
stratified random draw, `core.modeling.splits`), lets CV on the training part pick the
hyper-parameters (macro-F1; time-ordered folds under a time split), then logs one MLflow
run: params (split and its dates included), test metrics next to a baseline on the same
split, the dataset version, figures, the search's cv_results and the model (the Pipeline as
skops, with the types it may hold, `core.tracking.model_format.TRUSTED_TYPES`; signature, input
example). The model's classes live in this installed package: `mlflow models serve
--env-manager local` serves it from the project's environment.
"""

import importlib.metadata
import logging
import subprocess
import time
import warnings
from pathlib import Path
from typing import TypedDict

import mlflow
import numpy as np
import pandas as pd
from mlflow.data.pandas_dataset import from_pandas
from mlflow.models import ModelSignature
from mlflow.types.schema import ColSpec, Schema
from threadpoolctl import threadpool_limits

from core.config import Settings
from core.data import warehouse
from core.data.feature_sets import FEATURE_SETS
from core.data.schema import LABELS, RECORD_FIELDS
from core.errors import DpeError
from core.modeling import evaluate
from core.modeling.models import (
    FAMILIES,
    SEARCHES,
    build_pipeline,
    check_family,
)
from core.modeling.search import cv_results, fit_search, make_search
from core.modeling.splits import SPLITS, Split, record_dates, split_rows
from core.progress import Progress, logged
from core.tracking import registry
from core.tracking.model_format import TRUSTED_TYPES

log = logging.getLogger(__name__)

SEED = 42
TEST_SIZE = 0.2
LABEL = "etiquette_dpe"
EXAMPLE_ROWS = 3
CORE_DIR = Path(__file__).resolve().parent
MODEL_REQUIREMENTS = (
    "mlflow",
    "scikit-learn",
    "numpy",
    "pandas",
    "scipy",
    "skops",
    "pydantic",
)


class TrainResult(TypedDict):
    """What `train` returns (and `python -m core train --json` prints)."""

    run_id: str
    model_uri: str
    experiment: str
    dataset_version: str
    feature_set: str
    model: str
    search: str  # none|grid|random: "none" when the family has nothing to tune
    split: str  # time|random
    test_from: str | None  # ISO dates of the oldest and newest test records
    test_to: str | None
    label_leaking: bool
    best_params: dict
    train_rows: int
    test_rows: int
    metrics: dict[str, float]


def _labelled(frame: pd.DataFrame) -> pd.Series:
    return frame["reject_reason"].isna() & frame[LABEL].isin(LABELS)


def labelled_rows(frame: pd.DataFrame, feature_set: str) -> tuple[pd.DataFrame, np.ndarray]:
    """The feature set's fields and the label of valid rows labelled A–G."""
    keep = _labelled(frame)
    X = frame.loc[keep, list(FEATURE_SETS[feature_set].fields)].reset_index(drop=True)
    y = frame.loc[keep, LABEL].astype(str).to_numpy()
    counts = pd.Series(y).value_counts()
    if len(y) == 0 or counts.min() < 2:
        raise DpeError(
            f"too few labelled rows to train: {len(y)} rows, per label {counts.to_dict()} "
            "(each label present needs at least 2)"
        )
    return X, y


def labelled_dates(frame: pd.DataFrame) -> pd.Series:
    """The dates of the rows `labelled_rows` keeps, in its order (`splits.record_dates`)."""
    return record_dates(frame.loc[_labelled(frame)])


def held_out(
    frame: pd.DataFrame, feature_set: str, split: str, test_size: float, seed: int
) -> Split:
    """The training and test rows `train` uses for these options."""
    X, y = labelled_rows(frame, feature_set)
    return split_rows(X, y, labelled_dates(frame), split, test_size, seed)


def _classifier_params(model) -> dict:
    """The final classifier's scalar hyper-parameters (class_weight, n_estimators...)."""
    found = model.named_steps["classify"].get_params(deep=True)
    return {
        f"classify.{name}": value
        for name, value in found.items()
        if value is None or isinstance(value, str | int | float | bool)
    }


def _signature(feature_set: str) -> ModelSignature:
    # Built by hand: every field optional. infer_signature marks a column required as
    # soon as the example has no missing value in it.
    columns: list = [
        ColSpec("string" if RECORD_FIELDS[name].kind == "category" else "double", name, False)
        for name in FEATURE_SETS[feature_set].fields
    ]
    return ModelSignature(inputs=Schema(columns), outputs=Schema([ColSpec("string")]))


def _input_example(X_test: pd.DataFrame) -> pd.DataFrame:
    example = X_test.head(EXAMPLE_ROWS).astype(object)
    return example.where(example.notna(), None)


def _git_commit() -> str | None:
    try:
        found = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=CORE_DIR, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return found.stdout.strip() if found.returncode == 0 else None


def _requirements() -> list[str]:
    # Explicit: MLflow would otherwise load the model in a subprocess to infer them.
    return [f"{name}=={importlib.metadata.version(name)}" for name in MODEL_REQUIREMENTS]


def _log_run(experiment_id: str, result: dict, parts: dict) -> tuple[str, str]:
    """One MLflow run with everything about this training; returns (run_id, model URI)."""
    feature_set, family = result["feature_set"], result["model"]
    tags = {
        "feature_set": feature_set,
        "model_family": family,
        "dataset_version": result["dataset_version"],
        "label_leaking": str(result["label_leaking"]).lower(),
    }
    commit = _git_commit()
    if commit:
        tags["git_commit"] = tags["mlflow.source.git.commit"] = commit
    model, X_test, y_test = parts["model"], parts["X_test"], parts["y_test"]
    with mlflow.start_run(
        experiment_id=experiment_id, run_name=f"{family}-{feature_set}", tags=tags
    ) as run:
        mlflow.log_params(result["params"])
        mlflow.log_metrics(result["metrics"])
        mlflow.log_input(parts["dataset"], context="training")
        if parts["cv_results"] is not None:
            mlflow.log_text(parts["cv_results"].to_csv(index=False), "search/cv_results.csv")
        predicted = model.predict(X_test)
        figure = evaluate.confusion_figure(y_test, predicted, model.classes_)
        mlflow.log_figure(figure, "figures/confusion_matrix.png")
        confusion = evaluate.confusion_data(y_test, predicted, model.classes_)
        mlflow.log_dict(confusion, "confusion_matrix.json")
        importance = parts["importance"]
        mlflow.log_figure(evaluate.importance_figure(importance), "figures/field_importance.png")
        mlflow.log_dict(importance.to_dict(), "field_importance.json")
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            signature=_signature(feature_set),
            input_example=_input_example(X_test),
            # Loads only trusted types (MLflow test-loads it with this list: a class missing
            # from TRUSTED_TYPES fails here, named). Never a pickle: it runs code when loaded.
            serialization_format="skops",
            skops_trusted_types=list(TRUSTED_TYPES),
            pip_requirements=_requirements(),
        )
    return run.info.run_id, info.model_uri


def train(
    settings: Settings,
    feature_set: str,
    model: str,
    search: str = "grid",
    cv: int = 5,
    dataset_version: str | None = None,
    progress: Progress | None = None,
    seed: int = SEED,
    test_size: float = TEST_SIZE,
    params: dict | None = None,
    split: str = "time",
) -> TrainResult:
    """Train `model` (one of `FAMILIES`) on `feature_set`; log it as one MLflow run.

    `split`: time (the newest `test_size` of the records test, older ones train) or random
    (stratified). `search`: none|grid|random, scored by macro-F1 over `cv` folds of the
    training part (time-ordered under a time split). `params`: pipeline parameters fixed
    before the search, e.g. `{"classify__n_estimators": 50}`. `progress(fraction, message)`
    is called at each step, in this process. Returns the run, its test metrics (baseline_*
    on the same split, beats_baseline; with the consumption, monotonicity_violations) and
    what was trained.
    """
    _check_choice("feature set", feature_set, FEATURE_SETS)
    _check_choice("model", model, FAMILIES)
    _check_choice("search", search, SEARCHES)
    _check_choice("split", split, SPLITS)
    check_family(model, feature_set)
    report = logged("train", progress, log)
    report(0.0, f"loading dataset {dataset_version or '(current)'}")
    info, frame = warehouse.load_dataset(settings, dataset_version)
    held = held_out(frame, feature_set, split, test_size, seed)
    client = registry.connect(settings)
    with registry.mlflow_errors(settings):
        experiment_id = registry.experiment_id(settings, client)

    pipeline = build_pipeline(model, feature_set, seed).set_params(**(params or {}))
    search_cv = make_search(pipeline, model, search, held.folds(cv, seed), seed)
    started = time.perf_counter()
    fitted = fit_search(pipeline, search_cv, held.X_train, held.y_train, report)
    fit_seconds = time.perf_counter() - started

    report(0.8, f"evaluating on the test split ({split})")
    metrics, importance = _evaluate(fitted, feature_set, held, seed)
    if search_cv is not None:
        metrics["cv_macro_f1"] = float(search_cv.best_score_)
    metrics["fit_seconds"] = fit_seconds
    # numpy scalars (drawn by a random search) as plain values, for JSON
    best = {
        k: getattr(v, "item", lambda v=v: v)()
        for k, v in getattr(search_cv, "best_params_", {}).items()
    }
    result = TrainResult(
        run_id="",
        model_uri="",
        experiment=settings.experiment_name,
        dataset_version=info["version"],
        feature_set=feature_set,
        model=model,
        search="none" if search_cv is None else search,
        split=split,
        test_from=held.test_from,
        test_to=held.test_to,
        label_leaking=FEATURE_SETS[feature_set].leaks_label,
        best_params=best,
        train_rows=len(held.y_train),
        test_rows=len(held.y_test),
        metrics=metrics,
    )
    logged_params = {
        "model": model,
        "features": feature_set,
        "search": result["search"],
        "split": split,
        "test_from": held.test_from,
        "test_to": held.test_to,
        "cv": cv,
        "seed": seed,
        "test_size": test_size,
        "rows": len(held.y_train) + len(held.y_test),
        "train_rows": len(held.y_train),
        "test_rows": len(held.y_test),
        "candidates": 1 if search_cv is None else len(search_cv.cv_results_["params"]),
        **{f"best.{name}": value for name, value in best.items()},
        **_classifier_params(fitted),
    }
    report(0.9, "logging the run to MLflow")
    parts = {
        "model": fitted,
        "X_test": held.X_test,
        "y_test": held.y_test,
        "dataset": _dataset(held, info),
        "importance": importance,
        "cv_results": None if search_cv is None else cv_results(search_cv),
    }
    with registry.mlflow_errors(settings):
        run_id, model_uri = _log_run(experiment_id, {**result, "params": logged_params}, parts)
    report(
        1.0,
        f"run {run_id}: accuracy {metrics['accuracy']:.3f}, macro-F1 {metrics['macro_f1']:.3f}",
    )
    return {**result, "run_id": run_id, "model_uri": model_uri}


def _evaluate(fitted, feature_set: str, held: Split, seed: int) -> tuple[dict, pd.Series]:
    """Test metrics next to the baseline's on the same split, and field importance."""
    fields = FEATURE_SETS[feature_set].fields
    with threadpool_limits(1):
        metrics = evaluate.model_metrics(fitted, held.X_test, held.y_test)
        metrics.update(
            evaluate.baseline_metrics(
                feature_set, held.X_train, held.y_train, held.X_test, held.y_test
            )
        )
        metrics["beats_baseline"] = evaluate.beats_baseline(metrics, feature_set)
        if FEATURE_SETS[feature_set].has_consumption:
            # Test buildings whose label gets better somewhere as only the consumption rises.
            metrics["monotonicity_violations"] = evaluate.monotonicity_violations(
                fitted, held.X_test
            )
        importance = evaluate.field_importance(fitted, held.X_test, held.y_test, fields, seed)
    return metrics, importance


def _dataset(held: Split, info: dict):
    """The MLflow dataset of every labelled row this run used."""
    X = pd.concat([held.X_train, held.X_test], ignore_index=True)
    y = np.concatenate([held.y_train, held.y_test])
    with warnings.catch_warnings():
        # MLflow registers its local-file source twice, then warns that it is ambiguous.
        warnings.filterwarnings("ignore", "The specified dataset source can be interpreted")
        return from_pandas(
            X.assign(**{LABEL: y}),
            source=info["snapshot"],
            name="dpe-tertiaire",
            digest=info["version"],
            targets=LABEL,
        )


def _check_choice(what: str, value: str, choices) -> None:
    if value not in choices:
        raise DpeError(f"unknown {what} {value!r}: choose one of {', '.join(choices)}")
