"""Conformal label sets: the labels a prediction keeps so that, on records like the ones it was
calibrated on, at least the chosen share of sets hold the true label.

Split conformal classification with the LAC score (Sadinle et al. 2019; MAPIE's "lac"): a
record's score for a label is 1 − the model's probability of that label. Calibration (at
training, `core.modeling.train`) fits the model on the oldest part of its training rows and
scores the newest part, which it never saw: the guarantee is about records newer than the
fit, as the records a user predicts are. A set keeps every label whose score is within the
threshold (the calibration scores' finite-sample quantile at the coverage), and always the
predicted label: a set without the label shown next to it would make no sense to a user, and
adding it only raises the coverage.

One threshold for all records (marginal), not one per true label (Mondrian, class-conditional):
measured on the ADEME sample's back-test, per-label thresholds made sets larger with the
consumption (1.04 labels against 1.02, coverage 0.911 against 0.907) and, without it, missed
the target (0.876 against 0.893): the label mix of the newest records is not the calibration
records' (README, "Label sets").

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
from dataclasses import asdict, dataclass

import numpy as np

from core.data.schema import LABELS
from core.errors import DpeError

DEFAULT_COVERAGE = 0.9  # DPE_SET_COVERAGE's default
METHOD = "lac"
CALIBRATION_SHARE = 0.25  # the newest share of the training rows that calibrates
CALIBRATION_FILE = "calibration.json"  # in the model's directory, exported with the model
TOLERANCE = 1e-8  # a score this close to its threshold is within it (MAPIE's EPSILON)


@dataclass(frozen=True)
class Calibration:
    """What a model's label sets are computed from: the conformity scores of records newer
    than the fit that produced them, sorted, and when those records were."""

    scores: list[float]
    calibrated_from: str | None = None  # dates of the calibration records
    calibrated_to: str | None = None
    fitted_to: str | None = None  # the newest record the calibrating fit saw
    method: str = METHOD

    @property
    def rows(self) -> int:
        return len(self.scores)

    def threshold(self, coverage: float) -> float:
        """The score a label's must not exceed to be kept at `coverage` (inf: every label)."""
        check_coverage(coverage)
        return finite_quantile(self.scores, coverage)

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), indent=1).encode()

    @classmethod
    def from_json(cls, data: bytes | str, source: str = "the calibration") -> Calibration:
        """A Calibration from its JSON; DpeError naming what is wrong."""
        try:
            parsed = json.loads(data)
            if parsed.get("method") != METHOD:
                raise ValueError(f"unknown method {parsed.get('method')!r}")
            scores = sorted(float(value) for value in parsed["scores"])
            dates = {key: parsed.get(key) for key in ("calibrated_from", "calibrated_to")}
            if not all(value is None or isinstance(value, str) for value in dates.values()):
                raise ValueError("its dates are not text")
            return cls(scores, **dates, fitted_to=parsed.get("fitted_to"))
        except (ValueError, TypeError, KeyError, AttributeError) as error:
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
    scores = sorted(scores_of(proba, label_index).tolist())
    return Calibration(scores, calibrated_from, calibrated_to, fitted_to)


def label_sets(
    proba: np.ndarray, threshold: float, predicted: np.ndarray | None = None
) -> np.ndarray:
    """(n, 7) booleans: the labels each record's set keeps (their score within the
    threshold), and its `predicted` label index when given."""
    kept = (1.0 - proba) - threshold <= TOLERANCE
    if predicted is not None and len(kept):
        kept[np.arange(len(kept)), predicted] = True
    return kept


# Every possible set, by its bit mask (bit i: label i kept): a batch of a million rows is
# turned into texts by one lookup, not a loop.
_BITS = 1 << np.arange(len(LABELS))
_SETS = [[label for i, label in enumerate(LABELS) if mask >> i & 1] for mask in range(1 << 7)]
_TEXTS = np.array(["|".join(labels) for labels in _SETS], dtype=object)


def set_labels(kept: np.ndarray) -> list[list[str]]:
    """Each row of `label_sets` as its labels, in A..G order."""
    return [list(_SETS[mask]) for mask in (kept @ _BITS).tolist()]


def set_texts(kept: np.ndarray) -> np.ndarray:
    """Each row of `label_sets` as text, its labels in A..G order joined by `|` ("C|D")."""
    return _TEXTS[kept @ _BITS]


def coverage_and_size(kept: np.ndarray, label_index: np.ndarray) -> dict[str, float]:
    """How many sets hold the true label, and their mean size."""
    if not len(kept):
        return {"coverage": math.nan, "mean_set_size": math.nan}
    hits = kept[np.arange(len(kept)), label_index]
    return {"coverage": float(hits.mean()), "mean_set_size": float(kept.sum(axis=1).mean())}
