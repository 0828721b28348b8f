"""The rule models (`core.modeling.rules`) on columns, with numpy alone.

A rule pipeline is `RecordFrame` then `ScaleMixtureClassifier` (the default family),
`SectorScaleClassifier` (champions promoted before it) or `RuleClassifier`: sklearn runs
it through a DataFrame built per call and a Python call per record (~25 ms for 1,000
records, ~1.5 s for 100,000). `rule_engine(pipeline)` gives the same `predict_proba` on the
champion's columns (name -> array, `core.serving.records`):
each distinct sector's scale and confidence looked up once, each scale applied to its rows
in one `searchsorted`, the probabilities computed by the classifier's own arithmetic.
`checked_rule_engine` checks it against the pipeline (`core.serving.champion.Champion.compile`
serves with it only then).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

import numpy as np

from core.data.schema import LABELS
from core.modeling import scales
from core.modeling.rule_state import MIN_CONFIDENCE, RuleState, ScaleMixtureState, SectorScaleState
from core.serving.records import fields_frame, frame_columns, snake_case_record

log = logging.getLogger(__name__)

ColumnsEngine = Callable[[Mapping[str, np.ndarray]], np.ndarray]  # columns -> (n, classes)

SECTOR, CONSUMPTION = "secteur_activite", "conso_kwhep_m2_an"


def rule_engine(pipeline) -> tuple[str, ColumnsEngine] | None:
    """(name, engine) for a RecordFrame + ScaleMixtureClassifier, SectorScaleClassifier or
    RuleClassifier pipeline; None for any other."""
    steps = getattr(pipeline, "steps", [])
    if len(steps) != 2 or not hasattr(steps[0][1], "fields_"):
        return None
    fields, classifier = steps[0][1].fields_, steps[1][1]
    # The sklearn classifiers and the quick start's states (core.serving.light_reader) alike.
    if isinstance(classifier, ScaleMixtureState):
        return "numpy-scale-mixture", _ScaleMixture(classifier, fields)
    if isinstance(classifier, SectorScaleState):
        return "numpy-sector-scale", _SectorScale(classifier, fields)
    if isinstance(classifier, RuleState):
        return "numpy-rules", _Rules(classifier, fields)
    return None


def _inputs(columns: Mapping[str, np.ndarray], fields) -> tuple[np.ndarray, np.ndarray]:
    """The sectors (objects, None where missing) and consumptions (floats, NaN where
    missing) the model reads; a field outside its feature set reads as missing."""
    n = len(next(iter(columns.values())))
    sectors = columns[SECTOR] if SECTOR in fields else np.full(n, None, dtype=object)
    consumption = np.full(n, np.nan)
    if CONSUMPTION in fields:
        consumption = np.asarray(columns[CONSUMPTION], dtype=float)
    return sectors, consumption


def _distinct(values: np.ndarray) -> tuple[list, np.ndarray]:
    """The distinct values (in order of appearance) and each row's index among them."""
    index: dict = {}
    rows = np.fromiter((index.setdefault(v, len(index)) for v in values), np.intp, len(values))
    return list(index), rows


def _families(distinct: list, rows: np.ndarray, family_of: Callable) -> tuple[list, np.ndarray]:
    """The scale families the distinct sectors use (`family_of(sector)`, each looked up once)
    and each row's index among them."""
    names = [family_of(sector) for sector in distinct]
    families = list(dict.fromkeys(names))
    return families, np.array([families.index(name) for name in names], np.intp)[rows]


def _labels(consumption: np.ndarray, families: list[str], family_rows: np.ndarray) -> np.ndarray:
    """Each row's label index on its family's scale (0 where the consumption is missing)."""
    labels = np.zeros(len(consumption), dtype=np.intp)
    known = ~np.isnan(consumption)
    for code, family in enumerate(families):
        rows = np.flatnonzero(known & (family_rows == code))
        if len(rows):
            labels[rows] = scales.label_index(consumption[rows], family).astype(np.intp)
    return labels


class _SectorScale:
    """`SectorScaleClassifier.predict_proba` after `RecordFrame`, on columns."""

    def __init__(self, classifier, fields):
        self.classifier, self.fields = classifier, fields

    def __call__(self, columns: Mapping[str, np.ndarray]) -> np.ndarray:
        model = self.classifier
        sectors, consumption = _inputs(columns, self.fields)
        distinct, rows = _distinct(sectors)
        families, family_rows = _families(distinct, rows, model.family)
        by_sector = model.confidence_by_sector_
        confidence = np.array(
            [by_sector.get(scales.sector_key(s), MIN_CONFIDENCE) for s in distinct] + [0.0]
        )[rows].clip(MIN_CONFIDENCE, None)  # (the 0.0, never read, keeps it 1-D for no rows)
        labels = _labels(consumption, families, family_rows)
        known = np.flatnonzero(~np.isnan(consumption))
        proba = np.tile(model.prior_, (len(consumption), 1))
        proba[known] = ((1 - confidence[known]) / (len(LABELS) - 1))[:, None]
        proba[known, labels[known]] = confidence[known]
        return proba


class _ScaleMixture:
    """`ScaleMixtureClassifier.predict_proba` after `RecordFrame`, on columns: each distinct
    sector's scale shares looked up once."""

    def __init__(self, classifier, fields):
        self.classifier, self.fields = classifier, fields

    def __call__(self, columns: Mapping[str, np.ndarray]) -> np.ndarray:
        model = self.classifier
        sectors, consumption = _inputs(columns, self.fields)
        distinct, rows = _distinct(sectors)
        shares = [list(model.sector_shares(sector)[0].values()) for sector in distinct]
        families = scales.FAMILIES  # the order of the shares
        weights = np.array(shares + [[0.0] * len(families)])[rows]  # (the extra row: no rows)
        known = np.flatnonzero(~np.isnan(consumption))
        mixture = np.tile(model.label_prior_, (len(consumption), 1))  # no consumption
        mixture[known] = 0.0
        for column, family in enumerate(families):
            labels = scales.label_index(consumption[known], family).astype(np.intp)
            mixture[known, labels] += weights[known, column]
        return (1 - model.smoothing) * mixture + model.smoothing / len(LABELS)


class _Rules:
    """`RuleClassifier.predict_proba` after `RecordFrame`, on columns."""

    def __init__(self, classifier, fields):
        self.classifier, self.fields = classifier, fields

    def __call__(self, columns: Mapping[str, np.ndarray]) -> np.ndarray:
        model = self.classifier
        sectors, consumption = _inputs(columns, self.fields)
        distinct, rows = _distinct(sectors)
        families, family_rows = _families(distinct, rows, scales.family_for_sector)
        labels = _labels(consumption, families, family_rows)
        labels[np.isnan(consumption)] = LABELS.index(model.fallback_label_)
        proba = np.full((len(consumption), len(LABELS)), model.smoothing / (len(LABELS) - 1))
        proba[np.arange(len(consumption)), labels] = 1 - model.smoothing
        return proba


def checked_rule_engine(
    pipeline, example: list[dict], tolerance: float, n: int
) -> tuple[str, ColumnsEngine] | None:
    """`rule_engine(pipeline)` if it gives the pipeline's probabilities, within `tolerance`,
    on the input `example` and `n` check records; None (sklearn answers) otherwise."""
    found = rule_engine(pipeline)
    if found is None:
        return None
    name, engine = found
    records = [snake_case_record(record) for record in example]
    frame = fields_frame(records + check_records(pipeline, n))
    try:
        expected = pipeline.predict_proba(frame)
        difference = float(np.max(np.abs(engine(frame_columns(frame)) - expected)))
    except Exception as error:  # an engine that cannot run is not used
        log.warning("%s engine failed its check (%s): sklearn answers", name, error)
        return None
    if difference > tolerance:
        log.warning("%s engine differs from sklearn by %.3g: sklearn answers", name, difference)
        return None
    return found


def check_records(pipeline, n: int) -> list[dict]:
    """Records to check a rule engine on: the sectors the model knows and others (missing,
    unseen, a known code spelt anew), consumptions spread over every scale, exactly on
    their bounds, at the placeholders, and missing."""
    rng = np.random.default_rng(0)
    known = list(getattr(pipeline.steps[0][1], "known_values_", {}).get(SECTOR, []))
    sectors = [*known, None, "", "not seen in training", "W : spelt anew", "bureaux"]
    bounds = sorted({float(b) for bound in scales.SCALES.values() for b in bound})
    values = [None, 0.0, 0.1, *bounds, *(b + 1e-9 for b in bounds)]
    records = []
    for i in range(n):
        value = values[i] if i < len(values) else float(rng.lognormal(5.0, 1.0))
        records.append({SECTOR: sectors[i % len(sectors)], CONSUMPTION: value})
    return records
