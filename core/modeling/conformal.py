"""Conformal label sets: the labels a prediction keeps so that, on records like the ones it was
calibrated on, at least the chosen share of sets hold the true label.

Split conformal classification with the LAC score (Sadinle et al. 2019; MAPIE's "lac"): a
record's score for a label is 1 − the model's probability of that label. Calibration (at
training, `core.modeling.train`) fits the model on the oldest part of its training rows and
scores the newest part, which it never saw: the guarantee is about records newer than the
fit, as the records a user predicts are. Mondrian by label (class-conditional): the
threshold of label k comes from the calibration records whose true label is k, when there
are at least `MIN_GROUP` of them and they allow the coverage asked; otherwise from all of
them. A set keeps every label whose score is within its threshold, and always the
predicted label (a set without the label shown next to it would make no sense to a user;
it only raises the coverage).

The calibration is plain data (`Calibration`, saved as `calibration.json` in the model's
directory): the sorted scores per group, the method and the periods. The coverage is chosen
when the model is loaded (`DPE_SET_COVERAGE`): thresholds are computed then, with numpy only,
so serving never needs the library the tests compare these sets with (MAPIE, crepes).

What the coverage means: marginal, not per record, and only as long as the records predicted
look like the calibration records; if diagnosticians change their use of the scales again,
it degrades, which is why the realised coverage is watched (`core.monitoring.performance`).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field

import numpy as np

from core.data.schema import LABELS
from core.errors import DpeError

METHOD = "lac"
MONDRIAN = "label"
MIN_GROUP = 20  # calibration records a label needs for a threshold of its own
CALIBRATION_SHARE = 0.25  # the newest share of the training rows that calibrates
CALIBRATION_FILE = "calibration.json"  # in the model's directory, exported with the model
TOLERANCE = 1e-8  # a score this close to its threshold is within it (MAPIE's EPSILON)
ALL = "all"


@dataclass(frozen=True)
class Calibration:
    """What a model's label sets are computed from: conformity scores of records newer than
    the fit that produced them, sorted, for all of them (`scores["all"]`) and per true label."""

    scores: dict[str, list[float]]
    calibrated_from: str | None = None  # dates of the calibration records
    calibrated_to: str | None = None
    fitted_to: str | None = None  # the newest record the calibrating fit saw
    method: str = METHOD
    mondrian: str = MONDRIAN
    min_group: int = MIN_GROUP
    meta: dict = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return len(self.scores.get(ALL, []))

    def thresholds(self, coverage: float) -> np.ndarray:
        """The score threshold of each label A..G at `coverage` (inf: every record keeps it)."""
        check_coverage(coverage)
        overall = finite_quantile(self.scores[ALL], coverage)
        found = np.full(len(LABELS), overall)
        for index, label in enumerate(LABELS):
            group = self.scores.get(label, [])
            own = finite_quantile(group, coverage)
            if len(group) >= self.min_group and math.isfinite(own):
                found[index] = own
        return found

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), indent=1).encode()

    @classmethod
    def from_json(cls, data: bytes | str, source: str = "the calibration") -> Calibration:
        """A Calibration from its JSON; DpeError naming what is wrong."""
        try:
            parsed = json.loads(data)
            scores = parsed["scores"]
            if parsed.get("method") != METHOD or parsed.get("mondrian") != MONDRIAN:
                raise ValueError(f"method {parsed.get('method')}/{parsed.get('mondrian')}")
            if not isinstance(scores, dict) or ALL not in scores:
                raise ValueError("no scores")
            checked = {
                str(group): sorted(float(value) for value in values)
                for group, values in scores.items()
                if group == ALL or group in LABELS
            }
            return cls(
                scores=checked,
                calibrated_from=parsed.get("calibrated_from"),
                calibrated_to=parsed.get("calibrated_to"),
                fitted_to=parsed.get("fitted_to"),
                min_group=int(parsed.get("min_group", MIN_GROUP)),
                meta=dict(parsed.get("meta") or {}),
            )
        except (ValueError, TypeError, KeyError) as error:
            raise DpeError(f"{source} cannot be read: {error}") from None


def check_coverage(coverage: float) -> None:
    if not 0 < coverage < 1:
        raise DpeError(f"the set coverage must be between 0 and 1 (excluded), not {coverage}")


def scores_of(proba: np.ndarray, label_index: np.ndarray) -> np.ndarray:
    """Each record's conformity score: 1 − the probability of its true label (columns A..G)."""
    return 1.0 - proba[np.arange(len(proba)), label_index]


def finite_quantile(sorted_scores, coverage: float) -> float:
    """The split-conformal threshold: the ⌈(n + 1)·coverage⌉-th smallest of n scores, inf
    when n is too small for that coverage (MAPIE's and crepes' order statistic)."""
    n = len(sorted_scores)
    rank = math.ceil((n + 1) * coverage - 1e-12)
    return float(sorted_scores[rank - 1]) if 0 < rank <= n else math.inf


def calibrate(
    proba: np.ndarray,
    label_index: np.ndarray,
    calibrated_from: str | None = None,
    calibrated_to: str | None = None,
    fitted_to: str | None = None,
) -> Calibration:
    """The calibration of a model from its probabilities (columns A..G) on records it was not
    fitted on, and their true labels (0 = A .. 6 = G)."""
    found = scores_of(proba, label_index)
    scores = {ALL: sorted(found.tolist())}
    for index, label in enumerate(LABELS):
        scores[label] = sorted(found[label_index == index].tolist())
    return Calibration(scores, calibrated_from, calibrated_to, fitted_to)


def label_sets(
    proba: np.ndarray, thresholds: np.ndarray, predicted: np.ndarray | None = None
) -> np.ndarray:
    """(n, 7) booleans: the labels each record's set keeps (its score within the label's
    threshold), and its `predicted` label index when given."""
    kept = (1.0 - proba) - thresholds[None, :] <= TOLERANCE
    if predicted is not None and len(kept):
        kept[np.arange(len(kept)), predicted] = True
    return kept


def set_labels(kept: np.ndarray) -> list[list[str]]:
    """Each row of `label_sets` as its labels, in A..G order."""
    letters = np.array(LABELS, dtype=object)
    return [letters[row].tolist() for row in kept]


def coverage_and_size(kept: np.ndarray, label_index: np.ndarray) -> dict[str, float]:
    """How many sets hold the true label, and their mean size."""
    if not len(kept):
        return {"coverage": math.nan, "mean_set_size": math.nan}
    hits = kept[np.arange(len(kept)), label_index]
    return {"coverage": float(hits.mean()), "mean_set_size": float(kept.sum(axis=1).mean())}
