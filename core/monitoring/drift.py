"""The drift report: the records a model now sees (logged predictions since a time, or the
records a dataset version added) against the champion's training data, per feature: PSI on
bins made from the reference, and a test (chi² for categories, Kolmogorov-Smirnov for
numbers). A feature drifts only when both say so: on large samples a test finds negligible
differences significant, and on small ones PSI is noisy.
"""

import warnings
from datetime import UTC, datetime, timedelta
from typing import TypedDict

import numpy as np
import pandas as pd

from core.config import Settings
from core.data.feature_sets import FEATURE_SETS
from core.data.schema import LABELS, RECORD_FIELDS
from core.errors import Conflict, DpeError
from core.monitoring.prediction_store import SOURCES, read_predictions
from core.serving.champion import load_champion
from core.storage import Store
from core.tracking import champion_store


def parse_time(text: str) -> datetime:
    """An ISO 8601 time; one without an offset is UTC."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise DpeError(f"not an ISO 8601 time: {text!r} (e.g. 2024-05-01T08:00:00Z)") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


# ---------------------------------------------------------------------------- drift statistics

MISSING = "(missing)"
OTHER = "(other)"
QUANTILE_BINS = 10
# A number this frequent in the reference is a bin of its own: ADEME's placeholders
# (surface 100 in ~75 % of records) would otherwise swallow most quantile bins.
POINT_MASS_SHARE = 0.05
# Categories rarer than this in the reference share one bin, so a few rare values don't
# make PSI noisy (its expected value under no drift grows with the number of bins).
RARE_CATEGORY_SHARE = 0.01
MAX_CATEGORY_BINS = 20
# Floor for an empty bin's share, so a value absent on one side gives a large, finite PSI.
PSI_EPSILON = 1e-4
# Current rows are plainly not a sample of buildings with fewer distinct records than this
# share of them, or one record making up more than this share.
MIN_DISTINCT_SHARE = 0.5
MAX_REPEATED_SHARE = 0.5


def psi(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
    """Population stability index of two histograms over the same bins."""
    reference = np.maximum(reference_counts / max(reference_counts.sum(), 1), PSI_EPSILON)
    current = np.maximum(current_counts / max(current_counts.sum(), 1), PSI_EPSILON)
    return float(np.sum((current - reference) * np.log(current / reference)))


def category_bins(reference: pd.Series, categories=None) -> list[str]:
    """The reference's frequent categories (or the given ones), then other, then missing."""
    if categories is None:
        shares = reference.dropna().astype(str).value_counts(normalize=True)
        categories = list(shares[shares >= RARE_CATEGORY_SHARE].index[:MAX_CATEGORY_BINS])
    return [*categories, OTHER, MISSING]


def assign_categories(values: pd.Series, bins: list[str]) -> np.ndarray:
    text = (
        values.astype(object)
        .where(values.notna(), None)
        .map(lambda value: None if value is None else str(value))
    )
    return np.where(text.isna(), MISSING, np.where(text.isin(bins), text, OTHER))


def number_bins(reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(point values, interval edges): frequent values alone, the rest on its quantiles.

    Quantile edges make every bin hold about the same share of the reference, whatever the
    tails; the two outer intervals are open, so extreme values never fall out of the bins.
    """
    present = reference[~np.isnan(reference)]
    if not len(present):
        return np.array([]), np.array([])
    values, counts = np.unique(present, return_counts=True)
    points = values[counts >= POINT_MASS_SHARE * len(present)]
    rest = present[~np.isin(present, points)]
    if not len(rest):
        return points, np.array([])
    inner = np.linspace(0, 1, QUANTILE_BINS + 1)[1:-1]
    return points, np.unique(np.quantile(rest, inner))


def assign_numbers(values: np.ndarray, points: np.ndarray, edges: np.ndarray) -> np.ndarray:
    names = np.array(_intervals(edges), dtype=object)
    labels = names[np.searchsorted(edges, np.nan_to_num(values), side="right")]
    for point in points:
        labels[values == point] = f"= {point:g}"
    labels[np.isnan(values)] = MISSING
    return labels


def number_bin_names(points: np.ndarray, edges: np.ndarray) -> list[str]:
    return [*(f"= {point:g}" for point in points), *_intervals(edges), MISSING]


def _intervals(edges: np.ndarray) -> list[str]:
    bounds = [-np.inf, *edges, np.inf]
    return [f"[{low:.4g}, {high:.4g})" for low, high in zip(bounds[:-1], bounds[1:], strict=True)]


def compare_feature(
    reference: pd.Series,
    current: pd.Series,
    kind: str,
    settings: Settings,
    categories=None,
) -> dict:
    """PSI, test and verdict for one feature; `kind` is "category" or "number"."""
    if kind == "category":
        bins = category_bins(reference, categories)
        reference_bins = assign_categories(reference, bins)
        current_bins = assign_categories(current, bins)
    else:
        reference_values = pd.to_numeric(reference, errors="coerce").to_numpy(float)
        current_values = pd.to_numeric(current, errors="coerce").to_numpy(float)
        points, edges = number_bins(reference_values)
        bins = number_bin_names(points, edges)
        reference_bins = assign_numbers(reference_values, points, edges)
        current_bins = assign_numbers(current_values, points, edges)
    reference_counts = _counts(reference_bins, bins)
    current_counts = _counts(current_bins, bins)
    if kind == "category":
        test, statistic, p_value = "chi2", *_chi2(reference_counts, current_counts)
    else:
        test, statistic, p_value = "ks", *_ks(reference_values, current_values)
        if np.isnan(p_value):
            # No value on one side (all missing): its missing share is tested instead.
            test, statistic, p_value = "chi2", *_chi2(reference_counts, current_counts)
    score = psi(reference_counts, current_counts)
    drift = bool(score > settings.drift_psi_threshold and p_value < settings.drift_p_value)
    return {
        "score": round(score, 6),
        "drift": drift,
        "psi": round(score, 6),
        "test": test,
        "statistic": round(float(statistic), 6),
        "p_value": float(p_value),
        "kind": kind,
        "bins": [
            {"bin": name, "reference": round(float(r), 6), "current": round(float(c), 6)}
            for name, r, c in zip(
                bins, _shares(reference_counts), _shares(current_counts), strict=True
            )
        ],
    }


def _counts(assigned: np.ndarray, bins: list[str]) -> np.ndarray:
    counts = pd.Series(assigned, dtype=object).value_counts()
    return np.array([counts.get(name, 0) for name in bins], dtype=float)


def _shares(counts: np.ndarray) -> list[float]:
    return list(counts / counts.sum()) if counts.sum() else [0.0] * len(counts)


def _chi2(reference_counts: np.ndarray, current_counts: np.ndarray) -> tuple[float, float]:
    from scipy import stats

    table = np.vstack([reference_counts, current_counts])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return 0.0, 1.0  # one bin or one empty side: nothing to tell apart
    result = stats.chi2_contingency(table)
    return float(result.statistic), float(result.pvalue)


def _ks(reference_values: np.ndarray, current_values: np.ndarray) -> tuple[float, float]:
    from scipy import stats

    reference_values = reference_values[~np.isnan(reference_values)]
    current_values = current_values[~np.isnan(current_values)]
    if not len(reference_values) or not len(current_values):
        return 0.0, float("nan")
    with warnings.catch_warnings():
        # scipy tries the exact p-value up to 10,000 rows; when that fails numerically it
        # warns and gives the asymptotic one, which is the answer wanted: no log line for it.
        warnings.filterwarnings("ignore", "ks_2samp: Exact calculation unsuccessful")
        result = stats.ks_2samp(reference_values, current_values)
    return float(result.statistic), float(result.pvalue)


def compare_frames(
    reference: pd.DataFrame, current: pd.DataFrame, fields, settings: Settings
) -> dict[str, dict]:
    """compare_feature for each field; a field absent from a frame is all missing there."""
    empty = pd.Series(dtype=object)
    return {
        name: compare_feature(
            reference[name] if name in reference else empty.reindex(reference.index),
            current[name] if name in current else empty.reindex(current.index),
            "category" if RECORD_FIELDS[name].kind == "category" else "number",
            settings,
        )
        for name in fields
    }


def volume(predictions: pd.DataFrame) -> dict:
    """Predictions per hour (windows up to two days) or per day, and per source."""
    if predictions.empty:
        return {"period": None, "counts": []}
    span = predictions["time"].max() - predictions["time"].min()
    period = "hour" if span <= timedelta(days=2) else "day"
    starts = predictions["time"].dt.floor("h" if period == "hour" else "D")
    counts = predictions.groupby([starts, predictions["source"]]).size()
    return {
        "period": period,
        "counts": [
            {"start": start.isoformat(), "source": source, "count": int(count)}
            for (start, source), count in counts.items()
        ],
    }


# ---------------------------------------------------------------------------- drift report


def labelled_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows a model trains on: valid (no reject reason) and labelled A–G."""
    keep = frame["reject_reason"].isna() & frame["etiquette_dpe"].isin(LABELS)
    return frame[keep].reset_index(drop=True)


def added_rows(settings: Settings, version: str) -> pd.DataFrame:
    """The records dataset `version` holds and the version before it did not (by N°DPE)."""
    from core.data import warehouse

    _, frame = warehouse.load_dataset(settings, version)
    older = [info["version"] for info in warehouse.list_versions(settings)]
    # list_versions is newest first: the predecessor is the one listed right after.
    position = older.index(version)
    if position + 1 < len(older):
        _, previous = warehouse.load_dataset(settings, older[position + 1])
        frame = frame[~frame["n_dpe"].isin(previous["n_dpe"])]
    return frame.reset_index(drop=True)


class DriftReport(TypedDict):
    """What `drift_report` returns (the CLI's JSON, the Monitor page's data)."""

    drift: bool
    verdict: str  # "drift", "no drift", "too little data" or "not a random sample"
    message: str
    too_little_data: bool
    sample_warning: str | None  # why the current rows are not a sample of buildings
    drifting_features: list[str]
    # {"reference", "current" (judged), "left_out" (rows of clients without a token beyond
    # DPE_DRIFT_ROWS_PER_HOST each)}
    rows: dict[str, int]
    reference_version: str | None
    model_version: str
    feature_set: str | None
    window: dict  # {"kind": "predictions", "since", "source", "client"} or {"kind": "dataset", ...}
    thresholds: dict[str, float]
    features: dict[str, dict]
    label_shift: dict | None
    volume: dict | None


def drift_report(
    settings: Settings,
    since: str | None = None,
    dataset_version: str | None = None,
    source: str | None = None,
    client: str | None = None,
) -> DriftReport:
    """Drift of the current records against the champion's training data.

    Current records: the predictions logged since `since` (ISO 8601; all of them when None)
    from `source` (api, app, batch, cli; all when None) and `client` (as the log names it,
    e.g. "host:10.0.0.7"; all when None), or, with `dataset_version`, the
    records that version added to the one before it. Without `client`, each API client
    without a /predict token counts for at most DPE_DRIFT_ROWS_PER_HOST rows (`judged_rows`).
    No verdict on too few rows, nor on rows that are plainly not a sample of buildings
    (`sample_warning`).
    """
    from core.data import warehouse

    if dataset_version and (since or source or client):
        raise DpeError("give a time (--since) or a dataset version (--dataset), not both")
    if source is not None and source not in SOURCES:
        raise DpeError(f"unknown source {source!r}: one of {', '.join(SOURCES)}")
    start = parse_time(since) if since else None
    # The manifest as the API reads it: core.tracking.registry would import MLflow, seconds
    # for nothing.
    manifest = champion_store.read_manifest(Store(settings))
    if manifest.feature_set is None:
        raise Conflict("the champion's manifest names no feature set: promote it again")
    fields = FEATURE_SETS[manifest.feature_set].fields
    reference = labelled_rows(warehouse.load_dataset(settings, manifest.dataset_version)[1])
    if dataset_version is None:
        logged = read_predictions(settings, since=start, source=source, client=client)
        current = logged if client else judged_rows(logged, settings.drift_rows_per_host)
        since_text = start.isoformat() if start else None
        window = {"kind": "predictions", "since": since_text, "source": source, "client": client}
    else:
        logged = current = labelled_rows(added_rows(settings, dataset_version))
        window = {"kind": "dataset", "dataset_version": dataset_version}
    too_little = len(current) < settings.drift_min_rows
    not_a_sample = None if too_little else sample_warning(current, fields)
    features = compare_frames(reference, current, fields, settings) if len(current) else {}
    for result in features.values():
        if too_little or not_a_sample:
            result["drift"] = False  # a verdict on such rows would be noise, or misleading
        result["verdict"] = _verdict(result["drift"], too_little, not_a_sample)
    drifting = [name for name, result in features.items() if result["drift"]]
    predictions = window["kind"] == "predictions"
    left_out = len(logged) - len(current)
    return DriftReport(
        drift=bool(drifting),
        verdict=_verdict(bool(drifting), too_little, not_a_sample),
        message=(not_a_sample or _message(drifting, len(current), settings))
        + _left_out_note(left_out, settings),
        too_little_data=too_little,
        sample_warning=not_a_sample,
        drifting_features=drifting,
        rows={"reference": len(reference), "current": len(current), "left_out": left_out},
        reference_version=manifest.dataset_version,
        model_version=manifest.model_version,
        feature_set=manifest.feature_set,
        window=window,
        thresholds={
            "psi": settings.drift_psi_threshold,
            "p_value": settings.drift_p_value,
            "min_rows": settings.drift_min_rows,
        },
        features=features,
        label_shift=label_shift(settings, reference, current, not_a_sample)
        if predictions
        else None,
        volume=volume(logged) if predictions else None,  # all of it: a flood shows
    )


def judged_rows(predictions: pd.DataFrame, rows_per_host: int) -> pd.DataFrame:
    """The logged predictions a drift report judges: those of the workbench, the CLI and
    API clients with a /predict token (`token:…`) whole; of each API client without one
    (`host:<ip>`: anyone who reaches the API), at most `rows_per_host`, drawn at random
    (seeded: the same log gives the same report). One client cannot make drift alone."""
    anonymous = predictions["client"].fillna("").str.startswith("host:").to_numpy()
    if not anonymous.any():
        return predictions
    shuffled = predictions[anonymous].sample(frac=1.0, random_state=0)
    sampled = shuffled.groupby("client", sort=False).head(rows_per_host)
    return pd.concat([predictions[~anonymous], sampled]).sort_index()


def _left_out_note(left_out: int, settings: Settings) -> str:
    if not left_out:
        return ""
    return (
        f" ({left_out} predictions of API clients without a token left out: at most "
        f"{settings.drift_rows_per_host} each count, DPE_DRIFT_ROWS_PER_HOST)"
    )


def sample_warning(current: pd.DataFrame, fields) -> str | None:
    """Why the current rows are plainly not a random sample of buildings (far fewer
    distinct records than rows, or one record most of them: a client repeating a request,
    a load test), or None."""
    present = [name for name in fields if name in current]
    if current.empty or not present:
        return None
    counts = pd.util.hash_pandas_object(current[present], index=False).value_counts()
    distinct, top = len(counts), int(counts.iloc[0])
    if distinct >= MIN_DISTINCT_SHARE * len(current) and top <= MAX_REPEATED_SHARE * len(current):
        return None
    return (
        f"not a random sample of buildings: the {len(current)} current rows hold "
        f"{distinct} distinct records (the most frequent {top} times); drift is not judged "
        "on them"
    )


def label_shift(
    settings: Settings,
    reference: pd.DataFrame,
    current: pd.DataFrame,
    not_a_sample: str | None = None,
) -> dict | None:
    """Labels predicted now against those the champion predicts on its own training data
    (not the true labels: a model's mix differs from the truth, only a change of its own is a
    shift). No verdict on too few labels, nor when the inputs are not judged (`not_a_sample`)."""
    labels = current["label"].dropna()
    if labels.empty:
        return None
    champion = load_champion(settings)
    expected = champion.labels_of(champion.predict_proba(reference))
    result = compare_feature(
        pd.Series(expected), labels, "category", settings, categories=list(LABELS)
    )
    too_little = len(labels) < settings.drift_min_rows
    result["drift"] = result["drift"] and not too_little and not not_a_sample
    result["verdict"] = _verdict(result["drift"], too_little, not_a_sample)
    return result


def _verdict(drift: bool, too_little: bool, not_a_sample: str | None = None) -> str:
    if too_little:
        return "too little data"
    if not_a_sample:
        return "not a random sample"
    return "drift" if drift else "no drift"


def _message(drifting: list[str], rows: int, settings: Settings) -> str:
    if rows < settings.drift_min_rows:
        return (
            f"too little data to judge: {rows} current rows, "
            f"at least {settings.drift_min_rows} needed (DPE_DRIFT_MIN_ROWS)"
        )
    if drifting:
        return f"drift on {len(drifting)} feature(s): {', '.join(drifting)}"
    return "no feature drifts"
