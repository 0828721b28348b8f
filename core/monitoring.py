"""Prediction log and drift report.

Prediction log: every prediction (record fields, label, probabilities, model version,
source, UTC time) is appended to Parquet part files under `$DPE_HOME/predictions/`.
Part files rather than a DuckDB database because DuckDB lets one process at a time open a
file read-write, and the API, the workbench and the CLI all log and read at once: each
writer adds its own files (written under a temporary name, then renamed, so a reader never
sees half a file) and readers query them all with DuckDB's `read_parquet`.
The API's response path only puts on a queue; a background thread writes in batches.

Drift: the records a model now sees (logged predictions since a time, or the records a
dataset version added) against the champion's training data, per feature: PSI on bins
made from the reference, and a test (chi² for categories, Kolmogorov-Smirnov for numbers).
A feature drifts only when both say so: on large samples a test finds negligible
differences significant, and on small ones PSI is noisy.
"""

import atexit
import logging
import os
import queue
import threading
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from core import predict
from core.config import Settings
from core.errors import DpeError
from core.feature_sets import FEATURE_SETS
from core.schema import LABELS, RECORD_FIELDS
from core.storage import Store

# The API imports this module for its logger: what only the drift report and readers need
# (DuckDB, scipy, the warehouse) is imported where it is used, so the API's cold start
# doesn't pay for it.

log = logging.getLogger(__name__)

SOURCES = ("api", "app", "batch", "cli")
PROBA_COLUMNS = tuple(f"proba_{label}" for label in LABELS)
LOG_SCHEMA = pa.schema(
    [
        ("time", pa.timestamp("us", tz="UTC")),
        ("source", pa.string()),
        ("model_version", pa.string()),
        ("label", pa.string()),
        *[(column, pa.float64()) for column in PROBA_COLUMNS],
        ("error", pa.string()),
        *[
            (name, pa.string() if spec.kind == "category" else pa.float64())
            for name, spec in RECORD_FIELDS.items()
        ],
    ]
)


def predictions_dir(settings: Settings) -> Path:
    return settings.home / "predictions"


# ---------------------------------------------------------------------------- prediction log

_STOP = object()


class PredictionLogger:
    """Logs predictions off the caller's path: `log` puts on a queue, a thread writes.

    The thread writes a part file when `flush_rows` records are waiting or `flush_s` seconds
    after the first one came, on `flush()`, and on `close()` (also run at interpreter exit).
    """

    def __init__(
        self,
        settings: Settings,
        flush_rows: int | None = None,
        flush_s: float | None = None,
        max_queue: int = 100_000,
    ):
        self.directory = predictions_dir(settings)
        self.flush_rows = flush_rows or settings.log_flush_rows
        self.flush_s = flush_s if flush_s is not None else settings.log_flush_s
        self.dropped = 0
        self._queue: queue.Queue = queue.Queue(maxsize=max_queue)
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def log(self, records, results, model_version: str | None, source: str) -> None:
        """Queue predictions: `records` (record fields: a list of dicts, a DataFrame or a
        mapping of columns) and `results` (one dict each: label, probabilities {A..G}, error),
        in the same order. Fits `core.predict.PredictionSink`."""
        if source not in SOURCES:
            raise ValueError(f"source must be one of {SOURCES}, not {source!r}")
        entry = (records, results, model_version, source, datetime.now(UTC))
        try:
            self._queue.put_nowait(entry)
        except queue.Full:
            # The caller must never wait on its log: past the bound, predictions go unlogged.
            self.dropped += len(results)
            log.warning("prediction log queue full: %d predictions not logged", self.dropped)

    def flush(self, timeout_s: float = 60) -> None:
        """Write every prediction logged so far; returns once it is on disk."""
        if self._closed:
            return  # close() wrote everything
        done = threading.Event()
        self._queue.put(done)
        done.wait(timeout_s)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)
        self._thread.join()
        atexit.unregister(self.close)

    def _run(self) -> None:
        pending, rows, deadline = [], 0, None
        while True:
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                item = self._queue.get(timeout=timeout)
            except queue.Empty:
                item = None  # flush_s elapsed since the first pending entry
            if isinstance(item, tuple):
                pending.append(item)
                rows += len(item[1])
                deadline = deadline or time.monotonic() + self.flush_s
                if rows < self.flush_rows:
                    continue
            self._write(pending)
            pending, rows, deadline = [], 0, None
            if isinstance(item, threading.Event):
                item.set()
            if item is _STOP:
                return

    def _write(self, entries: list) -> None:
        if not entries:
            return
        try:
            write_part(self.directory, log_table(entries))
        except Exception:
            # A failed write must not stop the thread: later predictions are still logged.
            self.dropped += sum(len(entry[1]) for entry in entries)
            log.exception("could not write the prediction log")


def log_table(entries: list) -> pa.Table:
    """Queued (records, results, model_version, source, time) entries as one Arrow table.

    Built from plain lists, not a DataFrame per entry: the API logs one record per request,
    and per-entry pandas overhead would let the queue outgrow the writer.
    """
    columns = {name: [] for name in LOG_SCHEMA.names}
    for records, results, model_version, source, logged_at in entries:
        count = len(results)
        columns["time"] += [logged_at] * count
        columns["source"] += [source] * count
        columns["model_version"] += [None if model_version is None else str(model_version)] * count
        for result in results:
            columns["label"].append(result.get("label"))
            columns["error"].append(result.get("error"))
            probabilities = result.get("probabilities") or {}
            for label, column in zip(LABELS, PROBA_COLUMNS, strict=True):
                columns[column].append(_number(probabilities.get(label)))
        for name, values in _record_columns(records, count).items():
            columns[name] += values
    return pa.Table.from_pydict(columns, schema=LOG_SCHEMA)


def _record_columns(records, count: int) -> dict[str, list]:
    """Each record field (by snake_case name) as a list of clean values, from a list of
    dicts, a DataFrame, or a mapping of columns (name -> sequence); absent fields are None."""
    if isinstance(records, pd.DataFrame):
        # One conversion of the whole frame: pandas' per-column access costs far more than
        # the data when the frame holds one row, as it does for each API request.
        records = dict(zip(records.columns, records.to_numpy(object).T, strict=True))
    if isinstance(records, Mapping):
        missing = [None] * count
        return {
            name: [convert(value) for value in _plain(records.get(name, missing))]
            for name, convert in _CONVERTERS.items()
        }
    return {
        name: [convert(record.get(name)) for record in records]
        for name, convert in _CONVERTERS.items()
    }


def _plain(values):
    """An array's values as Python objects (a float array's as floats), in one call."""
    return values.tolist() if isinstance(values, np.ndarray) else values


def _text(value) -> str | None:
    if value is None or type(value) is str:  # what predictions give: checked first, cheaply
        return value
    return None if pd.isna(value) else str(value)


def _number(value) -> float | None:
    """A float, or None for a missing value or text that is not a number."""
    if type(value) is float:  # what predictions give: checked first, cheaply
        return None if value != value else value  # NaN is missing
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if np.isnan(number) else number


_CONVERTERS = {
    name: _text if spec.kind == "category" else _number for name, spec in RECORD_FIELDS.items()
}


def write_part(directory: Path, table: pa.Table) -> Path:
    """Write one part file atomically: readers see the whole file or none of it."""
    now = datetime.now(UTC)
    folder = directory / f"date={now:%Y-%m-%d}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"part-{now:%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:12]}.parquet"
    temporary = folder / f".{path.name}.tmp"
    pq.write_table(table, temporary)
    os.replace(temporary, path)
    return path


def read_predictions(
    settings: Settings, since: datetime | None = None, until: datetime | None = None
) -> pd.DataFrame:
    """Logged predictions with since <= time < until, oldest first (columns of LOG_SCHEMA)."""
    import duckdb

    files = sorted(predictions_dir(settings).glob("date=*/part-*.parquet"))
    if since is not None:
        # A part file is written after its predictions were made: older folders can be skipped.
        files = [f for f in files if f.parent.name >= f"date={since:%Y-%m-%d}"]
    if not files:
        return LOG_SCHEMA.empty_table().to_pandas()
    conditions, params = ["true"], [[str(f) for f in files]]
    if since is not None:
        conditions.append("time >= ?")
        params.append(since)
    if until is not None:
        conditions.append("time < ?")
        params.append(until)
    query = (
        "SELECT * FROM read_parquet(?, union_by_name = true, hive_partitioning = false) "
        f"WHERE {' AND '.join(conditions)} ORDER BY time"
    )
    with duckdb.connect() as con:
        return con.execute(query, params).df()


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
    from core import warehouse

    _, frame = warehouse.load_dataset(settings, version)
    older = [info["version"] for info in warehouse.list_versions(settings)]
    # list_versions is newest first: the predecessor is the one listed right after.
    position = older.index(version)
    if position + 1 < len(older):
        _, previous = warehouse.load_dataset(settings, older[position + 1])
        frame = frame[~frame["n_dpe"].isin(previous["n_dpe"])]
    return frame.reset_index(drop=True)


def drift_report(
    settings: Settings, since: str | None = None, dataset_version: str | None = None
) -> dict:
    """Drift of the current records against the champion's training data.

    Current records: the predictions logged since `since` (ISO 8601; all of them when None),
    or, with `dataset_version`, the records that version added to the one before it.
    """
    from core import warehouse

    if since and dataset_version:
        raise DpeError("give a time (--since) or a dataset version (--dataset), not both")
    start = parse_time(since) if since else None
    # The manifest as the API reads it: core.registry would import MLflow, seconds for nothing.
    manifest = predict.read_manifest(Store(settings))
    fields = FEATURE_SETS[manifest["feature_set"]].fields
    reference = labelled_rows(warehouse.load_dataset(settings, manifest["dataset_version"])[1])
    if dataset_version is None:
        current = read_predictions(settings, since=start)
        window = {"kind": "predictions", "since": start.isoformat() if start else None}
    else:
        current = labelled_rows(added_rows(settings, dataset_version))
        window = {"kind": "dataset", "dataset_version": dataset_version}
    too_little = len(current) < settings.drift_min_rows
    features = compare_frames(reference, current, fields, settings) if len(current) else {}
    for result in features.values():
        if too_little:
            result["drift"] = False  # a verdict on a handful of rows would be noise
        result["verdict"] = _verdict(result["drift"], too_little)
    drifting = [name for name, result in features.items() if result["drift"]]
    predictions = window["kind"] == "predictions"
    return {
        "drift": bool(drifting),
        "verdict": _verdict(bool(drifting), too_little),
        "message": _message(drifting, len(current), settings),
        "too_little_data": too_little,
        "drifting_features": drifting,
        "rows": {"reference": len(reference), "current": len(current)},
        "reference_version": manifest["dataset_version"],
        "model_version": manifest["model_version"],
        "feature_set": manifest["feature_set"],
        "window": window,
        "thresholds": {
            "psi": settings.drift_psi_threshold,
            "p_value": settings.drift_p_value,
            "min_rows": settings.drift_min_rows,
        },
        "features": features,
        "label_shift": label_shift(settings, reference, current) if predictions else None,
        "volume": volume(current) if predictions else None,
    }


def label_shift(settings: Settings, reference: pd.DataFrame, current: pd.DataFrame) -> dict | None:
    """Labels predicted now against those the champion predicts on its own training data.

    Its predictions rather than the true labels: a model's label mix differs from the truth
    (rare classes are under-predicted), and only a change of its own mix is a shift.
    """
    labels = current["label"].dropna()
    if labels.empty:
        return None
    champion = predict.load_champion(settings)
    expected = champion.labels_of(champion.predict_proba(reference))
    result = compare_feature(
        pd.Series(expected), labels, "category", settings, categories=list(LABELS)
    )
    too_little = len(labels) < settings.drift_min_rows
    result["drift"] = result["drift"] and not too_little
    result["verdict"] = _verdict(result["drift"], too_little)
    return result


def _verdict(drift: bool, too_little: bool) -> str:
    return "too little data" if too_little else "drift" if drift else "no drift"


def _message(drifting: list[str], rows: int, settings: Settings) -> str:
    if rows < settings.drift_min_rows:
        return (
            f"too little data to judge: {rows} current rows, "
            f"at least {settings.drift_min_rows} needed (DPE_DRIFT_MIN_ROWS)"
        )
    if drifting:
        return f"drift on {len(drifting)} feature(s): {', '.join(drifting)}"
    return "no feature drifts"


# ---------------------------------------------------------------------------- CLI


def add_cli(subparsers) -> None:
    parser = subparsers.add_parser(
        "drift", help="drift of logged predictions or a dataset version against the champion"
    )
    window = parser.add_mutually_exclusive_group()
    window.add_argument(
        "--since", metavar="ISO_TIME", help="predictions logged since this time (no offset: UTC)"
    )
    window.add_argument(
        "--dataset", metavar="VERSION", help="the records this dataset version added"
    )
    parser.set_defaults(run=_drift_command)


def _drift_command(args, settings: Settings) -> dict:
    report = drift_report(settings, since=args.since, dataset_version=args.dataset)
    # The per-bin shares are for charts (the Monitor page); the command keeps the figures.
    for result in [*report["features"].values(), report["label_shift"] or {}]:
        result.pop("bins", None)
    return report
