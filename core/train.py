"""Training: one model family on one feature set, searched, evaluated, logged to MLflow.

`train(settings, feature_set, model, ...)` takes the labelled, valid rows of a dataset
version, holds out a stratified test split (fixed seed, logged), lets k-fold CV on the
training part pick the hyper-parameters (macro-F1), then logs one MLflow run: params,
test metrics next to a baseline on the same split, the dataset version, figures, the
search's cv_results and the model (cloudpickled Pipeline, signature, input example, the
`core` package as code so `mlflow models serve` loads it without this repository).
"""

import importlib.metadata
import logging
import subprocess
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.types.schema import ColSpec, Schema
from sklearn.model_selection import (
    GridSearchCV,
    ParameterGrid,
    ParameterSampler,
    RandomizedSearchCV,
    StratifiedKFold,
    train_test_split,
)
from threadpoolctl import threadpool_limits

from core import evaluate, registry, warehouse
from core.config import Settings
from core.errors import DpeError
from core.feature_sets import FEATURE_SETS
from core.models import (
    FAMILIES,
    RANDOM_CANDIDATES,
    SEARCHES,
    build_pipeline,
    check_family,
    search_space,
)
from core.schema import LABELS, RECORD_FIELDS

log = logging.getLogger(__name__)

# progress(fraction done in [0, 1], what is happening): e.g. a Streamlit progress bar.
Progress = Callable[[float, str], None]

SEED = 42
TEST_SIZE = 0.2
N_JOBS = 2  # CV folds in parallel processes; this machine has 2 cores
LABEL = "etiquette_dpe"
EXAMPLE_ROWS = 3
CORE_DIR = Path(__file__).resolve().parent
MODEL_REQUIREMENTS = (
    "mlflow",
    "scikit-learn",
    "numpy",
    "pandas",
    "scipy",
    "cloudpickle",
    "pydantic",
)


class _Reporter:
    """Progress to the log (stderr) and to the caller's callback."""

    def __init__(self, progress: Progress | None):
        self.progress = progress

    def __call__(self, fraction: float, message: str) -> None:
        log.info("train [%3.0f%%] %s", 100 * fraction, message)
        if self.progress is not None:
            self.progress(fraction, message)


class _SteppedSearch:
    """A search that evaluates one candidate at a time (its CV folds in parallel), so
    progress can be reported between candidates; results are GridSearchCV's own."""

    on_candidate: Callable[[int, int], None] = staticmethod(lambda done, total: None)

    def _run_search(self, evaluate_candidates):
        candidates = list(self._candidates())
        for done, params in enumerate(candidates, 1):
            evaluate_candidates([params])
            self.on_candidate(done, len(candidates))


class _GridSearch(_SteppedSearch, GridSearchCV):
    def _candidates(self):
        return ParameterGrid(self.param_grid)


class _RandomSearch(_SteppedSearch, RandomizedSearchCV):
    def _candidates(self):
        return ParameterSampler(
            self.param_distributions, self.n_iter, random_state=self.random_state
        )


def labelled_rows(frame: pd.DataFrame, feature_set: str) -> tuple[pd.DataFrame, np.ndarray]:
    """The feature set's fields and the label of valid rows labelled A–G."""
    keep = frame["reject_reason"].isna() & frame[LABEL].isin(LABELS)
    X = frame.loc[keep, list(FEATURE_SETS[feature_set].fields)].reset_index(drop=True)
    y = frame.loc[keep, LABEL].astype(str).to_numpy()
    counts = pd.Series(y).value_counts()
    if len(y) == 0 or counts.min() < 2:
        raise DpeError(
            f"too few labelled rows to train: {len(y)} rows, per label {counts.to_dict()} "
            "(each label present needs at least 2)"
        )
    return X, y


def _split(X: pd.DataFrame, y: np.ndarray, test_size: float, seed: int):
    try:
        return train_test_split(X, y, test_size=test_size, stratify=y, random_state=seed)
    except ValueError as error:  # a test split too small to hold every label
        raise DpeError(f"cannot split {len(y)} rows for testing: {error}") from error


def _search(pipeline, family: str, search: str, cv: int, seed: int, report: _Reporter):
    """The search object for `search`, or None when there is nothing to tune."""
    space = search_space(family, search)
    if not space:
        return None
    folds = StratifiedKFold(cv, shuffle=True, random_state=seed)
    common = {"scoring": "f1_macro", "cv": folds, "n_jobs": N_JOBS}
    if search == "grid":
        found = _GridSearch(pipeline, space, **common)
    else:
        found = _RandomSearch(
            pipeline, space, n_iter=RANDOM_CANDIDATES, random_state=seed, **common
        )
    found.on_candidate = lambda done, total: report(
        0.1 + 0.65 * done / total, f"candidate {done}/{total} scored on {cv} folds"
    )
    return found


def _fit(pipeline, search_cv, X, y, report: _Reporter):
    """Fit the search (or the bare pipeline): the fitted model."""
    # One OpenMP/BLAS thread per process: folds already run in N_JOBS processes, and
    # OpenMP threads spin-waiting on a busy 2-core machine made HGB ~20x slower.
    with threadpool_limits(1):
        if search_cv is None:
            report(0.1, "fitting (no search)")
            return pipeline.fit(X, y)
        report(0.1, f"searching: {search_cv.cv.get_n_splits()}-fold CV per candidate")
        search_cv.fit(X, y)
    return search_cv.best_estimator_


def _cv_results(search_cv) -> pd.DataFrame:
    results = pd.DataFrame(search_cv.cv_results_)
    columns = ["rank_test_score", "mean_test_score", "std_test_score", "mean_fit_time"]
    params = pd.DataFrame(list(results["params"])).add_prefix("param.")
    return pd.concat([results[columns], params], axis=1).sort_values("rank_test_score")


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
    columns = [
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
        importance = parts["importance"]
        mlflow.log_figure(evaluate.importance_figure(importance), "figures/field_importance.png")
        mlflow.log_dict(importance.to_dict(), "field_importance.json")
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            signature=_signature(feature_set),
            input_example=_input_example(X_test),
            serialization_format="cloudpickle",
            code_paths=[str(CORE_DIR)],
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
) -> dict:
    """Train `model` (rules|logreg|rf|hgb|scale) on `feature_set`; log it as one MLflow run.

    `search`: none|grid|random, scored by macro-F1 over `cv` stratified folds of the
    training part. `params`: pipeline parameters fixed before the search, e.g.
    `{"classify__n_estimators": 50}`. `progress(fraction, message)` is called at each step.
    Returns run_id, metrics (test split, baseline_* on the same split; with the
    consumption, monotonicity_violations) and what was trained.
    """
    _check_choice("feature set", feature_set, FEATURE_SETS)
    _check_choice("model", model, FAMILIES)
    _check_choice("search", search, SEARCHES)
    check_family(model, feature_set)
    report = _Reporter(progress)
    report(0.0, f"loading dataset {dataset_version or '(current)'}")
    info, frame = warehouse.load_dataset(settings, dataset_version)
    X, y = labelled_rows(frame, feature_set)
    X_train, X_test, y_train, y_test = _split(X, y, test_size, seed)
    client = registry.connect(settings)
    with registry.mlflow_errors(settings):
        experiment_id = registry.experiment_id(settings, client)

    pipeline = build_pipeline(model, feature_set, seed).set_params(**(params or {}))
    search_cv = _search(pipeline, model, search, cv, seed, report)
    started = time.perf_counter()
    fitted = _fit(pipeline, search_cv, X_train, y_train, report)
    fit_seconds = time.perf_counter() - started

    report(0.8, "evaluating on the test split")
    with threadpool_limits(1):
        metrics = evaluate.model_metrics(fitted, X_test, y_test)
        metrics.update(evaluate.baseline_metrics(feature_set, X_train, y_train, X_test, y_test))
        if FEATURE_SETS[feature_set].has_consumption:
            # Test buildings whose label gets better somewhere as only the consumption rises.
            metrics["monotonicity_violations"] = evaluate.monotonicity_violations(fitted, X_test)
        importance = evaluate.field_importance(
            fitted, X_test, y_test, FEATURE_SETS[feature_set].fields, seed
        )
    if search_cv is not None:
        metrics["cv_macro_f1"] = float(search_cv.best_score_)
    metrics["fit_seconds"] = fit_seconds

    # numpy scalars (drawn by a random search) as plain values, for JSON
    best = {
        k: getattr(v, "item", lambda v=v: v)()
        for k, v in getattr(search_cv, "best_params_", {}).items()
    }
    result = {
        "experiment": settings.experiment_name,
        "dataset_version": info["version"],
        "feature_set": feature_set,
        "model": model,
        "search": "none" if search_cv is None else search,
        "label_leaking": FEATURE_SETS[feature_set].leaks_label,
        "best_params": best,
        "train_rows": len(y_train),
        "test_rows": len(y_test),
        "metrics": metrics,
    }
    result["params"] = {
        "model": model,
        "features": feature_set,
        "search": result["search"],
        "cv": cv,
        "seed": seed,
        "test_size": test_size,
        "train_rows": len(y_train),
        "test_rows": len(y_test),
        "candidates": 1 if search_cv is None else len(search_cv.cv_results_["params"]),
        **{f"best.{name}": value for name, value in best.items()},
        **_classifier_params(fitted),
    }
    with warnings.catch_warnings():
        # MLflow registers its local-file source twice, then warns that it is ambiguous.
        warnings.filterwarnings("ignore", "The specified dataset source can be interpreted")
        dataset = mlflow.data.from_pandas(
            X.assign(**{LABEL: y}),
            source=info["snapshot"],
            name="dpe-tertiaire",
            digest=info["version"],
            targets=LABEL,
        )
    report(0.9, "logging the run to MLflow")
    parts = {
        "model": fitted,
        "X_test": X_test,
        "y_test": y_test,
        "dataset": dataset,
        "importance": importance,
        "cv_results": None if search_cv is None else _cv_results(search_cv),
    }
    with registry.mlflow_errors(settings):
        run_id, model_uri = _log_run(experiment_id, result, parts)
    report(
        1.0,
        f"run {run_id}: accuracy {metrics['accuracy']:.3f}, macro-F1 {metrics['macro_f1']:.3f}",
    )
    return {"run_id": run_id, "model_uri": model_uri, **result}


def _check_choice(what: str, value: str, choices) -> None:
    if value not in choices:
        raise DpeError(f"unknown {what} {value!r}: choose one of {', '.join(choices)}")


# --- CLI -------------------------------------------------------------------------------------


def _folds(text: str) -> int:
    value = int(text)
    if value < 2:
        raise ValueError(text)
    return value


def add_cli(subparsers) -> None:
    parser = subparsers.add_parser("train", help="train a model and log it to MLflow")
    parser.add_argument("--features", required=True, choices=tuple(FEATURE_SETS))
    parser.add_argument("--model", required=True, choices=FAMILIES)
    parser.add_argument("--search", default="grid", choices=SEARCHES)
    parser.add_argument("--cv", type=_folds, default=5, help="CV folds (>= 2)")
    parser.add_argument("--dataset", help="dataset version (default: the current one)")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.set_defaults(run=_train_command)


def _train_command(args, settings: Settings) -> dict:
    result = train(
        settings,
        args.features,
        args.model,
        search=args.search,
        cv=args.cv,
        dataset_version=args.dataset,
        seed=args.seed,
    )
    result.pop("params")  # all logged to the run; the headline is enough here
    return result
