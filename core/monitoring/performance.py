"""Realised performance: how the serving champion does on labelled records as they arrive.

A model's back-test says how it did on records newer than its training, in the past; this
says how the champion does on the labelled records each new dataset version brings, which it
never saw: accuracy, macro-F1, its label sets' coverage and mean size, and the same for the
rule baseline (the official scales, calibrated and fitted on the records before). A score is
flagged when the realised accuracy falls below the range of the champion's back-test windows
(`backtest_accuracy_min`): what it promised no longer holds. The lifecycle pass scores the
champion this way before it retrains (`core.lifecycle.pipeline`); `dpe performance` lists
the scores, newest first; the Monitor page charts them over time.

Scores are kept in the DuckDB table `realised_performance`, one row each, as JSON.
"""

import json
import logging
import math
from datetime import UTC, datetime
from typing import TypedDict

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, f1_score

from core.config import Settings
from core.data import warehouse
from core.data.feature_sets import FEATURE_SETS
from core.data.schema import RECORD_FIELDS
from core.errors import DpeError
from core.modeling import evaluate
from core.modeling.models import build_pipeline
from core.modeling.splits import record_dates
from core.monitoring.drift import added_rows, labelled_rows
from core.serving.champion import Champion, load_champion
from core.tracking.headline import BACKTEST_HEADLINE

log = logging.getLogger(__name__)

TABLE = """
    CREATE TABLE IF NOT EXISTS realised_performance (
        scored_at TIMESTAMP NOT NULL, dataset_version VARCHAR, model_version VARCHAR,
        rows INTEGER NOT NULL, result JSON NOT NULL)
"""
SCORES = BACKTEST_HEADLINE  # accuracy, macro_f1, coverage, mean_set_size


class Realised(TypedDict):
    """One scoring of the champion on the labelled records a dataset version brought."""

    scored_at: str  # ISO 8601, UTC
    dataset_version: str
    records_from: str | None  # dates of the records scored
    records_to: str | None
    rows: int  # labelled, valid records scored
    model_version: str
    run_id: str | None
    set_coverage: float | None  # the coverage the champion's sets are made at
    champion: dict[str, float | None]  # accuracy, macro_f1, coverage, mean_set_size
    rules: dict[str, float | None] | None  # the same for the official scales
    backtest: dict | None  # the champion's back-test headline: {name: {mean, min, max}}
    flagged: bool
    reason: str | None  # why it is flagged, or why it is not judged


def score_version(
    settings: Settings, dataset_version: str | None = None, champion: Champion | None = None
) -> Realised:
    """Score `champion` (default: the one in the store) on the labelled records
    `dataset_version` (default: the current one) added to the version before it."""
    version = dataset_version or warehouse.current_version(settings)
    if version is None:
        raise DpeError("no dataset yet: ingest records first (python -m core ingest)")
    champion = champion or load_champion(settings)
    added = labelled_rows(added_rows(settings, version))
    before = _before(settings, version)
    return score(settings, champion, added, before, version)


def _before(settings: Settings, version: str) -> pd.DataFrame:
    """The labelled records of the version before `version` (empty when it is the first)."""
    versions = [info["version"] for info in warehouse.list_versions(settings)]  # newest first
    position = versions.index(version)
    if position + 1 == len(versions):
        return pd.DataFrame()
    _, previous = warehouse.load_dataset(settings, versions[position + 1])
    return labelled_rows(previous)


def score(
    settings: Settings,
    champion: Champion,
    records: pd.DataFrame,
    before: pd.DataFrame,
    dataset_version: str,
) -> Realised:
    """The champion's and the rules' scores on `records` (labelled, valid, snake_case
    columns); the rules calibrated and fitted on `before` (the records known until then)."""
    metrics = champion.manifest.metrics
    headline = {
        name: {
            "mean": metrics.get(f"backtest_{name}"),
            "min": metrics.get(f"backtest_{name}_min"),
            "max": metrics.get(f"backtest_{name}_max"),
        }
        for name in SCORES
        if metrics.get(f"backtest_{name}") is not None
    }
    dates = record_dates(records) if len(records) else pd.Series(dtype="datetime64[ns]")
    found = _champion_scores(champion, records)
    flagged, reason = _judged(settings, found, headline, len(records))
    return Realised(
        scored_at=datetime.now(UTC).isoformat(timespec="microseconds"),
        dataset_version=dataset_version,
        records_from=_day(dates.min()),
        records_to=_day(dates.max()),
        rows=len(records),
        model_version=champion.model_version,
        run_id=champion.manifest.run_id,
        set_coverage=champion.set_coverage,
        champion=found,
        rules=_rule_scores(champion.manifest.feature_set, records, before),
        backtest=headline or None,
        flagged=flagged,
        reason=reason,
    )


def _champion_scores(champion: Champion, records: pd.DataFrame) -> dict[str, float | None]:
    if records.empty:
        return dict.fromkeys(SCORES)
    fields = records[list(RECORD_FIELDS)].astype(object)
    answers = champion.predict(fields.where(fields.notna(), None).to_dict("records"), "monitor")
    truth = records["etiquette_dpe"].astype(str).to_numpy()
    predicted = np.array([answer["label"] for answer in answers], dtype=object)
    sets = [answer["label_set"] for answer in answers]
    scored = predicted != None  # noqa: E711 (an element-wise test): records it could take
    if not scored.any():
        return dict.fromkeys(SCORES)
    found: dict[str, float | None] = {
        "accuracy": float(accuracy_score(truth[scored], predicted[scored])),
        "macro_f1": float(
            f1_score(truth[scored], predicted[scored], average="macro", zero_division=0)
        ),
        "coverage": None,
        "mean_set_size": None,
    }
    if champion.set_coverage is not None:
        kept = [s or [] for s, ok in zip(sets, scored, strict=True) if ok]
        hits = [label in s for label, s in zip(truth[scored], kept, strict=True)]
        found["coverage"] = float(np.mean(hits))
        found["mean_set_size"] = float(np.mean([len(s) for s in kept]))
    return found


def _rule_scores(
    feature_set: str | None, records: pd.DataFrame, before: pd.DataFrame
) -> dict[str, float | None] | None:
    """The rule model's scores on `records`, calibrated and fitted on `before` (None when
    there is nothing to fit it on)."""
    if records.empty or len(before) < 2:
        return None
    feature_set = feature_set or "with-consumption"
    fields = list(FEATURE_SETS[feature_set].fields)
    rules = build_pipeline("rules", feature_set)
    y_before = before["etiquette_dpe"].astype(str).to_numpy()
    try:
        calibration = evaluate.calibration_of(
            rules, feature_set, before[fields], y_before, record_dates(before)
        )
    except DpeError:
        return None
    rules.fit(before[fields], y_before)
    truth = records["etiquette_dpe"].astype(str).to_numpy()
    return dict(evaluate.set_scores(rules, calibration, records[fields], truth))


def _judged(settings: Settings, found: dict, headline: dict, rows: int) -> tuple[bool, str | None]:
    """(flagged, why): flagged when the realised accuracy is below the back-test's range."""
    if rows < settings.performance_min_rows:
        return False, (
            f"not judged: {rows} labelled records, at least {settings.performance_min_rows} "
            "needed (DPE_PERFORMANCE_MIN_ROWS)"
        )
    if "accuracy" not in headline:
        return False, "not judged: the champion was trained before runs carried a back-test"
    low, high = headline["accuracy"]["min"], headline["accuracy"]["max"]
    accuracy = found["accuracy"]
    if accuracy is None:
        return False, "not judged: the champion could take none of the records"
    if accuracy < low:
        return True, (
            f"realised accuracy {accuracy:.3f} is below the back-test's range {low:.3f}–{high:.3f}"
        )
    return False, None


def _day(value) -> str | None:
    return None if pd.isna(value) else pd.Timestamp(value).date().isoformat()


def record(settings: Settings, realised: Realised) -> None:
    """Keep a scoring (the DuckDB table `realised_performance`), in place of an earlier one of
    the same champion on the same dataset version (a pass run again after a failure)."""
    with warehouse.connect(settings, read_only=False) as con:
        con.execute(TABLE)
        con.execute(
            "DELETE FROM realised_performance WHERE dataset_version = ? AND model_version = ?",
            [realised["dataset_version"], realised["model_version"]],
        )
        con.execute(
            "INSERT INTO realised_performance VALUES (?, ?, ?, ?, ?)",
            [
                datetime.fromisoformat(realised["scored_at"]).replace(tzinfo=None),
                realised["dataset_version"],
                realised["model_version"],
                realised["rows"],
                json.dumps(realised, default=_plain),
            ],
        )


def history(settings: Settings, limit: int | None = None) -> list[Realised]:
    """Every scoring kept, newest first."""
    if not settings.duckdb_path.exists():
        return []
    with warehouse.connect(settings) as con:
        [(present,)] = con.execute(
            "SELECT count(*) FROM information_schema.tables "
            "WHERE table_name = 'realised_performance'"
        ).fetchall()
        if not present:
            return []
        rows = con.execute(
            "SELECT result FROM realised_performance ORDER BY scored_at DESC, rowid DESC"
            + (f" LIMIT {int(limit)}" if limit else "")
        ).fetchall()
    return [json.loads(result) for (result,) in rows]


def _plain(value):
    """JSON for numpy numbers (NaN as null)."""
    number = float(value)
    return None if math.isnan(number) else number
