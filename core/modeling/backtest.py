"""Back-test: how a model family would have done on records newer than its training.

Rolling origin: the newest `SPAN` of the labelled records (by `core.modeling.splits.record_dates`)
is cut into `windows` consecutive windows; for each, the family (its default
hyper-parameters, no search) trains on every record older than the window and is scored
on the window, and so is the rule model. One MLflow run (tag `kind=backtest`) holds the
per-window metrics (step = window number), their means and a figure.
"""

import logging
from dataclasses import asdict, dataclass, replace

import mlflow
import numpy as np
from matplotlib.figure import Figure
from sklearn.metrics import accuracy_score, f1_score
from threadpoolctl import threadpool_limits

from core.config import Settings
from core.data import quarantine, warehouse
from core.data.feature_sets import feature_set as get_feature_set
from core.errors import DpeError
from core.modeling.models import build_pipeline, check_family
from core.modeling.splits import time_order
from core.modeling.train import SEED, labelled_dates, labelled_rows
from core.progress import Progress, logged
from core.tracking import registry

log = logging.getLogger(__name__)

WINDOWS = 4
SPAN = 0.5  # the newest half of the records is tested, window by window
MEAN_METRICS = ("mean_accuracy", "mean_macro_f1", "rules_mean_accuracy", "rules_mean_macro_f1")
WINDOW_METRICS = ("accuracy", "macro_f1", "rules_accuracy", "rules_macro_f1")


@dataclass(frozen=True)
class Window:
    window: int  # 1 = the oldest tested window
    train_rows: int
    test_rows: int
    test_from: str
    test_to: str
    accuracy: float
    macro_f1: float
    rules_accuracy: float
    rules_macro_f1: float


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
    rules_mean_accuracy: float
    rules_mean_macro_f1: float


def window_bounds(dates, windows: int, span: float = SPAN) -> list[tuple[int, int]]:
    """(start, end) positions in time order (`time_order(dates)`) of each test window:
    consecutive, covering the newest `span` of the rows, never splitting a date."""
    ordered = dates.iloc[time_order(dates)].reset_index(drop=True)
    n = len(ordered)
    cuts = np.linspace(n - round(span * n), n, windows + 1).round().astype(int)
    bounds = []
    for cut in cuts[:-1]:
        while 0 < cut < n and ordered.iloc[cut - 1] == ordered.iloc[cut]:
            cut -= 1  # the whole day goes to the later window
        bounds.append(int(cut))
    bounds = sorted(set(bounds)) + [n]
    found = [(start, end) for start, end in zip(bounds, bounds[1:], strict=False) if start > 0]
    if len(found) < 2:
        raise DpeError(f"too few distinct dates among {n} records for a back-test")
    return found


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
    dates = labelled_dates(frame)
    order, bounds = time_order(dates), window_bounds(dates, windows)
    scored = []
    for number, (start, end) in enumerate(bounds, 1):
        report((number - 1) / (len(bounds) + 1), f"window {number}/{len(bounds)}")
        rows = (order[:start], order[start:end])
        models = {
            "": build_pipeline(model, feature_set, seed).set_params(**(params or {})),
            "rules_": build_pipeline("rules", feature_set),
        }
        scores = {
            f"{prefix}{metric}": value
            for prefix, candidate in models.items()
            for metric, value in fit_and_score(candidate, X, y, *rows).items()
        }
        test_dates = dates.iloc[rows[1]]
        scored.append(
            Window(
                number,
                len(rows[0]),
                len(rows[1]),
                test_dates.min().date().isoformat(),
                test_dates.max().date().isoformat(),
                **scores,
            )
        )
    means = {
        f"{prefix}mean_{metric}": float(np.mean([getattr(w, prefix + metric) for w in scored]))
        for prefix in ("", "rules_")
        for metric in ("accuracy", "macro_f1")
    }
    report(len(bounds) / (len(bounds) + 1), "logging the back-test to MLflow")
    result = BacktestResult(
        "", settings.experiment_name, info["version"], feature_set, model, scored, **means
    )
    with registry.mlflow_errors(settings):
        run_id = _log_run(settings, result)
    report(1.0, f"run {run_id}: mean macro-F1 {result.mean_macro_f1:.3f}")
    return replace(result, run_id=run_id)


def fit_and_score(model, X, y, train: np.ndarray, test: np.ndarray) -> dict[str, float]:
    """Fit `model` on the rows `train`, score it on the rows `test`."""
    with threadpool_limits(1):
        model.fit(X.iloc[train], y[train])
        predicted = model.predict(X.iloc[test])
    return {
        "accuracy": float(accuracy_score(y[test], predicted)),
        "macro_f1": float(f1_score(y[test], predicted, average="macro", zero_division=0)),
    }


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
    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    numbers = [w.window for w in result.windows]
    ax.plot(numbers, [w.macro_f1 for w in result.windows], marker="o", label=result.model)
    ax.plot(numbers, [w.rules_macro_f1 for w in result.windows], marker="s", label="rules")
    ax.set_xticks(numbers, [f"{w.test_from}\n{w.test_to}" for w in result.windows], fontsize=8)
    ax.set_ylabel("macro-F1 on the window")
    ax.set_title(f"Back-test: {result.model} on {result.feature_set}, trained on earlier records")
    ax.set_ylim(0, 1)
    ax.legend()
    fig.tight_layout()
    return fig
