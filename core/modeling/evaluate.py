"""Test-split metrics, baselines, label-set scores, the rolling back-test and figures.

Metrics are flat `{name: float}` dicts, as MLflow logs them: the headline ones
(accuracy, macro_f1, balanced_accuracy, log_loss, ece) and, per label, precision_X,
recall_X, f1_X and support_X, so class imbalance is visible next to the averages.
With the consumption, `monotonicity_violations`: how often raising only the consumption
gives a better label (`non_monotone`).

Scores that predict the future (`calibration_of`, `set_scores`, `window_scores`): a model is
calibrated on the newest part of its training rows by a copy fitted on the older part
(`core.modeling.conformal`), then fitted on all of them; it is scored on records newer than
any it saw (the time split's test records, each back-test window): accuracy, macro-F1, and
its label sets' coverage and mean size at `SET_COVERAGE`.
"""

import math
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.base import clone
from sklearn.dummy import DummyClassifier
from sklearn.inspection import permutation_importance
from sklearn.metrics import (
    ConfusionMatrixDisplay,
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    log_loss,
    precision_recall_fscore_support,
)

from core.data.feature_sets import FEATURE_SETS
from core.data.schema import LABELS
from core.errors import DpeError
from core.modeling import conformal
from core.modeling.models import build_pipeline, label_index_from_proba
from core.modeling.splits import newest_cut, time_order, window_bounds
from core.tracking.headline import BACKTEST_HEADLINE, HEADLINE

CALIBRATION_BINS = 10
SET_COVERAGE = conformal.DEFAULT_COVERAGE  # what runs score label sets at
# kWhEP/m²/an, 5-unit steps across every scale's bounds (all multiples of 5, the highest
# 1,130): the grid a building's consumption is raised over to check monotonicity.
CONSUMPTIONS = np.arange(0.0, 1500.0, 5.0)
MONOTONICITY_CHUNK = 50  # buildings predicted at a time (x len(CONSUMPTIONS) rows)


def metrics(y_true, proba: np.ndarray, classes, y_pred=None) -> dict[str, float]:
    """Headline and per-label metrics from predicted probabilities (columns = `classes`)
    and the predicted labels (default: the most probable class of each row)."""
    classes = np.asarray(classes)
    if y_pred is None:
        y_pred = classes[np.argmax(proba, axis=1)]
    result = {
        "accuracy": accuracy_score(y_true, y_pred),
        "macro_f1": f1_score(y_true, y_pred, average="macro", zero_division=0),
        "balanced_accuracy": balanced_accuracy_score(y_true, y_pred),
        "log_loss": log_loss(y_true, proba, labels=classes),
        "ece": expected_calibration_error(y_true, proba, classes, y_pred),
    }
    labels = [label for label in LABELS if label in set(classes) | set(y_true)]
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    for i, label in enumerate(labels):
        result[f"precision_{label}"] = precision[i]
        result[f"recall_{label}"] = recall[i]
        result[f"f1_{label}"] = f1[i]
        result[f"support_{label}"] = support[i]
    return {name: float(value) for name, value in result.items()}


def expected_calibration_error(y_true, proba: np.ndarray, classes, y_pred=None) -> float:
    """How far the predicted label's probability (default: the top one's) is from its hit
    rate, averaged over bins."""
    classes = np.asarray(classes)
    predicted = np.argmax(proba, axis=1)
    if y_pred is not None:
        column = {label: i for i, label in enumerate(classes)}
        predicted = np.array([column[label] for label in y_pred], dtype=int)
    confidence = proba[np.arange(len(proba)), predicted]
    hits = classes[predicted] == np.asarray(y_true)
    bins = np.minimum((confidence * CALIBRATION_BINS).astype(int), CALIBRATION_BINS - 1)
    error = 0.0
    for b in np.unique(bins):
        mask = bins == b
        error += mask.mean() * abs(hits[mask].mean() - confidence[mask].mean())
    return float(error)


def model_metrics(model, X, y) -> dict[str, float]:
    # The model's own labels: the scale model's is a median, not the argmax of its proba.
    return metrics(y, model.predict_proba(X), model.classes_, model.predict(X))


def non_monotone(model, buildings, consumptions=CONSUMPTIONS) -> np.ndarray:
    """For each building (a DataFrame or a list of records), whether raising only its
    `conso_kwhep_m2_an` over `consumptions` (ascending) gives a better label somewhere.

    By regulation a higher consumption never gives a better label: the rules and the
    scale model never do (by construction), a forest often does.
    """
    frame = pd.DataFrame(buildings).reset_index(drop=True)
    consumptions = np.asarray(consumptions, dtype=float)
    found = np.zeros(len(frame), dtype=bool)
    for start in range(0, len(frame), MONOTONICITY_CHUNK):
        part = frame.iloc[start : start + MONOTONICITY_CHUNK]
        grid = part.loc[part.index.repeat(len(consumptions))].reset_index(drop=True)
        grid["conso_kwhep_m2_an"] = np.tile(consumptions, len(part))
        index = label_indices(model.predict(grid)).reshape(len(part), len(consumptions))
        found[start : start + len(part)] = (np.diff(index, axis=1) < 0).any(axis=1)
    return found


def monotonicity_violations(model, buildings, consumptions=CONSUMPTIONS) -> float:
    """The fraction of `buildings` that are `non_monotone` (0 when there are none)."""
    found = non_monotone(model, buildings, consumptions)
    return float(found.mean()) if len(found) else 0.0


def label_indices(labels) -> np.ndarray:
    """0 (A) .. 6 (G) for each label."""
    return np.array([LABELS.index(str(label)) for label in labels], dtype=int)


def baseline_metrics(feature_set: str, X_train, y_train, X_test, y_test) -> dict[str, float]:
    """What a model must beat, on the same split, as `baseline_<name>_<metric>`.

    With the consumption, the official scales (the rule model); without, the majority label.
    """
    if FEATURE_SETS[feature_set].baseline == "rules":
        name, model = "rules", build_pipeline("rules", feature_set)
    else:
        name, model = "majority", DummyClassifier(strategy="most_frequent")
    found = model_metrics(model.fit(X_train, y_train), X_test, y_test)
    return {f"baseline_{name}_{metric}": found[metric] for metric in HEADLINE}


def beats_baseline(metrics: dict[str, float], feature_set: str) -> float:
    """1.0 when the model's macro-F1 is above its baseline's on the same split, else 0.0
    (a float: MLflow logs metrics as numbers)."""
    baseline = FEATURE_SETS[feature_set].baseline
    return float(metrics["macro_f1"] > metrics[f"baseline_{baseline}_macro_f1"])


def field_importance(model, X: pd.DataFrame, y, fields, seed: int) -> pd.Series:
    """Macro-F1 lost when each record field is shuffled on the test split, largest first.

    Measured on record fields rather than encoded columns, so every family, the rule
    model included, is explained in the fields a user sends.
    """
    found = permutation_importance(
        model, X[list(fields)], y, scoring="f1_macro", n_repeats=3, random_state=seed, n_jobs=1
    )
    return pd.Series(found.importances_mean, index=list(fields)).sort_values(ascending=False)


def confusion_data(y_true, y_pred, classes) -> dict:
    """The confusion matrix as JSON-able data, for the workbench's interactive chart:
    `counts[i][j]` test records of true label `labels[i]` predicted `labels[j]`."""
    labels = [str(label) for label in classes]
    counts = confusion_matrix(y_true, y_pred, labels=list(classes))
    return {"labels": labels, "counts": counts.tolist()}


def confusion_figure(y_true, y_pred, classes) -> Figure:
    # Figure() rather than pyplot: no GUI backend, no global state to close afterwards.
    fig = Figure(figsize=(6, 5))
    ax = fig.subplots()
    ConfusionMatrixDisplay.from_predictions(
        y_true, y_pred, labels=list(classes), ax=ax, colorbar=False
    )
    ax.set_title("Confusion matrix (test split)")
    fig.tight_layout()
    return fig


def importance_figure(importance: pd.Series) -> Figure:
    fig = Figure(figsize=(7, 0.35 * len(importance) + 1.2))
    ax = fig.subplots()
    importance.iloc[::-1].plot.barh(ax=ax)
    ax.set_xlabel("macro-F1 lost when the field is shuffled")
    ax.set_title("Field importance (permutation, test split)")
    fig.tight_layout()
    return fig


# --- Scores that predict the future: label sets, calibration, the rolling back-test ---------


def proba_of(model, X) -> np.ndarray:
    """`model.predict_proba(X)` as columns A..G (a label the model never saw: 0)."""
    proba = model.predict_proba(X)
    full = np.zeros((len(proba), len(LABELS)))
    full[:, [LABELS.index(str(label)) for label in model.classes_]] = proba
    return full


def calibration_of(
    model, feature_set: str, X: pd.DataFrame, y, dates: pd.Series, share: float | None = None
):
    """The calibration of `model` on `feature_set` (fitted or not: a clone is fitted): fitted
    on all but the newest `share` of the rows by date (`conformal.CALIBRATION_SHARE`), scored
    on those, in the feature set's doubt groups (`conformal.doubt_for`)."""
    share = conformal.CALIBRATION_SHARE if share is None else share
    dates = dates.reset_index(drop=True)
    order = time_order(dates)
    cut = newest_cut(dates, order, max(1, round(share * len(order))))
    if cut == 0:
        raise DpeError(f"cannot calibrate label sets: all {len(order)} training rows share a date")
    fit_rows, calibration_rows = order[:cut], order[cut:]
    y = np.asarray(y)
    fitted = clone(model).fit(X.iloc[fit_rows], y[fit_rows])
    proba = proba_of(fitted, X.iloc[calibration_rows])
    return conformal.calibrate(
        proba,
        label_indices(y[calibration_rows]),
        doubt=conformal.doubt_for(feature_set),
        calibrated_from=_day(dates.iloc[calibration_rows].min()),
        calibrated_to=_day(dates.iloc[calibration_rows].max()),
        fitted_to=_day(dates.iloc[fit_rows].max()),
    )


def set_scores(model, calibration, X, y, coverage: float = SET_COVERAGE) -> dict[str, float]:
    """Accuracy, macro-F1 and the label sets' coverage and mean size of a fitted model."""
    proba = proba_of(model, X)
    predicted = label_index_from_proba(model, proba)
    kept = calibration.at(coverage).label_sets(proba, predicted)
    truth = label_indices(y)
    return {
        "accuracy": float(accuracy_score(truth, predicted)),
        "macro_f1": float(f1_score(truth, predicted, average="macro", zero_division=0)),
        **conformal.coverage_and_size(kept, truth),
    }


def window_scores(
    model, feature_set: str, X: pd.DataFrame, y, dates: pd.Series, windows: int
) -> list[dict]:
    """The rolling-origin back-test of `model` (unfitted, or fitted: it is cloned): for each
    window of `splits.window_bounds`, calibrated and fitted on every older record, scored on
    the window (`set_scores`), the rule model alongside (`rules_*`)."""
    dates = dates.reset_index(drop=True)
    y = np.asarray(y)
    order = time_order(dates)
    found = []
    for number, (start, end) in enumerate(window_bounds(dates, windows), 1):
        before, window = order[:start], order[start:end]
        row: dict[str, Any] = {
            "window": number,
            "train_rows": len(before),
            "test_rows": len(window),
            "test_from": _day(dates.iloc[window].min()),
            "test_to": _day(dates.iloc[window].max()),
        }
        for prefix, candidate in (("", model), ("rules_", build_pipeline("rules", feature_set))):
            fit_X, fit_y, fit_dates = X.iloc[before], y[before], dates.iloc[before]
            calibration = calibration_of(candidate, feature_set, fit_X, fit_y, fit_dates)
            fitted = clone(candidate).fit(fit_X, fit_y)
            scores = set_scores(fitted, calibration, X.iloc[window], y[window])
            row.update({prefix + name: value for name, value in scores.items()})
        found.append(row)
    return found


def windows_figure(windows: list[dict], model: str, feature_set: str) -> Figure:
    """Macro-F1 and the label sets' coverage per window, the rules' alongside."""
    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    numbers = [w["window"] for w in windows]
    ax.plot(numbers, [w["macro_f1"] for w in windows], marker="o", label=f"{model} macro-F1")
    ax.plot(numbers, [w["rules_macro_f1"] for w in windows], marker="s", label="rules macro-F1")
    ax.plot(
        numbers,
        [w["coverage"] for w in windows],
        marker="^",
        linestyle="--",
        label=f"{model} set coverage (target {SET_COVERAGE:.0%})",
    )
    ax.set_xticks(numbers, [f"{w['test_from']}\n{w['test_to']}" for w in windows], fontsize=8)
    ax.set_ylabel("on the window")
    ax.set_title(f"Back-test: {model} on {feature_set}, trained on earlier records")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def backtest_summary(windows: list[dict]) -> dict[str, float]:
    """The back-test headline as metrics: for the model and the rules, each of
    `BACKTEST_HEADLINE`'s mean over the windows, its min and its max
    (`backtest_accuracy`, `backtest_accuracy_min`, ..., `backtest_rules_accuracy`...)."""
    summary = {}
    for prefix in ("", "rules_"):
        for name in BACKTEST_HEADLINE:
            values = [w[prefix + name] for w in windows if not math.isnan(w[prefix + name])]
            if not values:
                continue
            key = f"backtest_{prefix}{name}"
            summary[key] = float(np.mean(values))
            summary[f"{key}_min"] = float(np.min(values))
            summary[f"{key}_max"] = float(np.max(values))
    summary["backtest_windows"] = float(len(windows))
    return summary


def _day(value) -> str | None:
    return None if pd.isna(value) else pd.Timestamp(value).date().isoformat()
