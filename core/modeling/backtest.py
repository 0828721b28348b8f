"""Back-test: how a model family would have done on records newer than its training.

Rolling origin (`core.modeling.evaluate.window_scores`): the newest `SPAN` of the labelled
records (by `core.modeling.splits.record_dates`) is cut into `windows` consecutive windows;
for each, the family (its default hyper-parameters, no search) is calibrated and trained on
every record older than the window and scored on the window: accuracy, macro-F1, and its
label sets' coverage and mean size at `evaluate.SET_COVERAGE`; so is the rule model. One
MLflow run (tag `kind=backtest`) holds the per-window metrics (step = window number), their
means and a figure. `train` runs the same back-test with the hyper-parameters it chose.
"""

import logging
from dataclasses import asdict, dataclass, replace

import mlflow
import numpy as np
from matplotlib.figure import Figure
from threadpoolctl import threadpool_limits

from core.config import Settings
from core.data import quarantine, warehouse
from core.data.feature_sets import feature_set as get_feature_set
from core.modeling import evaluate
from core.modeling.models import build_pipeline, check_family
from core.modeling.splits import SPAN, WINDOWS
from core.modeling.train import SEED, labelled_dates, labelled_rows
from core.progress import Progress, logged
from core.tracking import registry
from core.tracking.headline import BACKTEST_HEADLINE

log = logging.getLogger(__name__)

WINDOW_METRICS = tuple(f"{who}{name}" for who in ("", "rules_") for name in BACKTEST_HEADLINE)
MEAN_METRICS = tuple(f"{who}mean_{name}" for who in ("", "rules_") for name in BACKTEST_HEADLINE)


@dataclass(frozen=True)
class Window:
    window: int  # 1 = the oldest tested window
    train_rows: int
    test_rows: int
    test_from: str
    test_to: str
    accuracy: float
    macro_f1: float
    coverage: float  # of the label sets at evaluate.SET_COVERAGE
    mean_set_size: float
    rules_accuracy: float
    rules_macro_f1: float
    rules_coverage: float
    rules_mean_set_size: float


@dataclass(frozen=True)
class BacktestResult:
    run_id: str
    experiment: str
    dataset_version: str
    feature_set: str
    model: str
    windows: list[Window]
    mean_accuracy: float
    mean_macro_f1: float
    mean_coverage: float
    mean_mean_set_size: float
    rules_mean_accuracy: float
    rules_mean_macro_f1: float
    rules_mean_coverage: float
    rules_mean_mean_set_size: float


def backtest(
    settings: Settings,
    feature_set: str,
    model: str,
    windows: int = WINDOWS,
    dataset_version: str | None = None,
    progress: Progress | None = None,
    params: dict | None = None,
    seed: int = SEED,
) -> BacktestResult:
    """Rolling-origin scores of `model` on `feature_set`, the rule model's alongside;
    logged as one MLflow run. `params` are fixed pipeline parameters."""
    check_family(model, get_feature_set(feature_set).name)
    report = logged("backtest", progress, log)
    report(0.0, f"loading dataset {dataset_version or '(current)'}")
    info, frame = warehouse.load_dataset(settings, dataset_version)
    frame = quarantine.for_training(settings, frame)  # refused records: out of training
    X, y = labelled_rows(frame, feature_set)
    pipeline = build_pipeline(model, feature_set, seed).set_params(**(params or {}))
    report(0.1, f"{windows} windows, each calibrated and trained on the records before it")
    with threadpool_limits(1):
        found = evaluate.window_scores(pipeline, feature_set, X, y, labelled_dates(frame), windows)
    scored = [Window(**window) for window in found]
    means = {
        f"{who}mean_{name}": float(np.mean([getattr(w, who + name) for w in scored]))
        for who in ("", "rules_")
        for name in BACKTEST_HEADLINE
    }
    report(0.9, "logging the back-test to MLflow")
    result = BacktestResult(
        "", settings.experiment_name, info["version"], feature_set, model, scored, **means
    )
    with registry.mlflow_errors(settings):
        run_id = _log_run(settings, result)
    report(1.0, f"run {run_id}: mean macro-F1 {result.mean_macro_f1:.3f}")
    return replace(result, run_id=run_id)


def _log_run(settings: Settings, result: BacktestResult) -> str:
    client = registry.connect(settings)
    experiment_id = registry.experiment_id(settings, client)
    tags = {
        "kind": "backtest",
        "feature_set": result.feature_set,
        "model_family": result.model,
        "dataset_version": result.dataset_version,
    }
    name = f"backtest-{result.model}-{result.feature_set}"
    with mlflow.start_run(experiment_id=experiment_id, run_name=name, tags=tags) as run:
        mlflow.log_params(
            {
                "model": result.model,
                "features": result.feature_set,
                "windows": len(result.windows),
                "span": SPAN,
                "set_coverage": evaluate.SET_COVERAGE,
            }
        )
        mlflow.log_metrics({name: getattr(result, name) for name in MEAN_METRICS})
        for window in result.windows:
            mlflow.log_metrics(
                {name: getattr(window, name) for name in WINDOW_METRICS}, step=window.window
            )
        mlflow.log_dict(asdict(result) | {"run_id": run.info.run_id}, "backtest.json")
        mlflow.log_figure(backtest_figure(result), "figures/backtest.png")
    return run.info.run_id


def backtest_figure(result: BacktestResult) -> Figure:
    return evaluate.windows_figure(
        [asdict(window) for window in result.windows], result.model, result.feature_set
    )
