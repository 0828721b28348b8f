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

Mondrian by doubt, with the consumption: a record whose most probable label has less than
`DOUBT` (its sector's scales give different labels and its use of them is mixed, or never
seen) is "in doubt"; records in doubt and settled ones each get the threshold of the
calibration records of their group (when it has `MIN_GROUP` of them and they allow the
coverage; else the threshold of all). So a set holds the label each plausible scale gives
where the scale is in doubt, and the label alone elsewhere: one threshold for all would be
set by the settled majority and keep single labels everywhere. Without the consumption nearly
every record is in doubt and one threshold serves all (`doubt=None`). Measured on the ADEME
sample's back-test (README, "Label sets"): with the consumption, one threshold for all gives
coverage 0.905 with single labels only, doubt groups 0.92 with 1.13 labels; per true label
(class-conditional) 0.91 with 1.04; without the consumption (hgb), doubt groups and per-label
thresholds miss the target (0.85, 0.88) where one threshold holds it (0.89, 5.2 labels): the
label mix of the newest records is not the calibration records'.

The calibration is plain data (`Calibration`, saved as `calibration.json` in the model's
directory): the scores of each group, the method and the periods. The coverage is chosen
when the model is loaded (`DPE_SET_COVERAGE`, `Calibration.at`): thresholds are computed
then, with numpy only, so serving never needs the libraries the tests compare these sets
with (MAPIE, crepes).

What the coverage means: over records, not for each one, and only as long as the records
predicted look like the calibration records; if diagnosticians change their use of the
scales again, it degrades, which is why the realised coverage is watched
(`core.monitoring.performance`).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass

import numpy as np

from core.data.feature_sets import FEATURE_SETS
from core.data.schema import LABELS
from core.errors import DpeError

DEFAULT_COVERAGE = 0.9  # DPE_SET_COVERAGE's default
METHOD = "lac"
DOUBT = 0.8  # a record whose most probable label has less is in doubt
MIN_GROUP = 20  # calibration records a group needs for a threshold of its own
GROUPS = ("settled", "in_doubt")
CALIBRATION_SHARE = 0.25  # the newest share of the training rows that calibrates
CALIBRATION_FILE = "calibration.json"  # in the model's directory, exported with the model
TOLERANCE = 1e-8  # a score this close to its threshold is within it (MAPIE's EPSILON)


@dataclass(frozen=True)
class Thresholds:
    """The score thresholds of a calibration at one coverage: `settled` and `in_doubt`
    (the same when the calibration has no groups)."""

    settled: float
    in_doubt: float
    doubt: float | None

    def label_sets(self, proba: np.ndarray, predicted: np.ndarray | None = None) -> np.ndarray:
        """(n, 7) booleans: the labels each record's set keeps (their score within its
        group's threshold), and its `predicted` label index when given."""
        threshold = np.full(len(proba), self.settled)
        if self.doubt is not None and len(proba):
            threshold[in_doubt(proba, self.doubt)] = self.in_doubt
        kept = (1.0 - proba) - threshold[:, None] <= TOLERANCE
        if predicted is not None and len(kept):
            kept[np.arange(len(kept)), predicted] = True
        return kept


@dataclass(frozen=True)
class Calibration:
    """What a model's label sets are computed from: the conformity scores of records newer
    than the fit that produced them, by group (`GROUPS`; all "settled" when `doubt` is None),
    and when those records were."""

    scores: dict[str, list[float]]
    doubt: float | None = DOUBT
    calibrated_from: str | None = None  # dates of the calibration records
    calibrated_to: str | None = None
    fitted_to: str | None = None  # the newest record the calibrating fit saw
    method: str = METHOD
    min_group: int = MIN_GROUP

    @property
    def rows(self) -> int:
        return sum(len(found) for found in self.scores.values())

    def at(self, coverage: float) -> Thresholds:
        """The thresholds at `coverage` (inf: every label kept)."""
        check_coverage(coverage)
        pooled = finite_quantile([s for group in GROUPS for s in self.scores[group]], coverage)
        own = {}
        for group in GROUPS:
            found = finite_quantile(self.scores[group], coverage)
            usable = len(self.scores[group]) >= self.min_group and math.isfinite(found)
            own[group] = found if usable else pooled
        return Thresholds(own["settled"], own["in_doubt"], self.doubt)

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), indent=1).encode()

    @classmethod
    def from_json(cls, data: bytes | str, source: str = "the calibration") -> Calibration:
        """A Calibration from its JSON; DpeError naming what is wrong."""
        try:
            parsed = json.loads(data)
            if parsed.get("method") != METHOD:
                raise ValueError(f"unknown method {parsed.get('method')!r}")
            scores = {group: sorted(map(float, parsed["scores"][group])) for group in GROUPS}
            doubt = parsed.get("doubt")
            dates = {k: parsed.get(k) for k in ("calibrated_from", "calibrated_to", "fitted_to")}
            if not all(value is None or isinstance(value, str) for value in dates.values()):
                raise ValueError("its dates are not text")
            return cls(
                scores,
                doubt=None if doubt is None else float(doubt),
                min_group=int(parsed.get("min_group", MIN_GROUP)),
                **dates,
            )
        except (ValueError, TypeError, KeyError, AttributeError) as error:
            raise DpeError(f"{source} cannot be read: {error}") from None


def doubt_for(feature_set: str) -> float | None:
    """The doubt groups of a feature set's models: with the consumption, `DOUBT`; without
    it, none (one threshold for all)."""
    return DOUBT if FEATURE_SETS[feature_set].has_consumption else None


def check_coverage(coverage: float) -> None:
    if not 0 < coverage < 1:
        raise DpeError(f"the set coverage must be between 0 and 1 (excluded), not {coverage}")


def in_doubt(proba: np.ndarray, doubt: float) -> np.ndarray:
    """The records whose most probable label has less than `doubt`."""
    return proba.max(axis=1) < doubt


def scores_of(proba: np.ndarray, label_index: np.ndarray) -> np.ndarray:
    """Each record's conformity score: 1 − the probability of its true label (columns A..G)."""
    return 1.0 - proba[np.arange(len(proba)), label_index]


def finite_quantile(scores, coverage: float) -> float:
    """The split-conformal threshold: the ⌈(n + 1)·coverage⌉-th smallest of n scores, inf
    when n is too small for that coverage (MAPIE's and crepes' order statistic)."""
    n = len(scores)
    rank = math.ceil((n + 1) * coverage - 1e-12)
    return float(np.sort(scores)[rank - 1]) if 0 < rank <= n else math.inf


def calibrate(
    proba: np.ndarray,
    label_index: np.ndarray,
    doubt: float | None = DOUBT,
    calibrated_from: str | None = None,
    calibrated_to: str | None = None,
    fitted_to: str | None = None,
) -> Calibration:
    """The calibration of a model from its probabilities (columns A..G) on records it was not
    fitted on and their true labels (0 = A .. 6 = G); `doubt` None: one group."""
    found = scores_of(proba, label_index)
    doubtful = np.zeros(len(found), bool) if doubt is None else in_doubt(proba, doubt)
    scores = {
        "settled": sorted(found[~doubtful].tolist()),
        "in_doubt": sorted(found[doubtful].tolist()),
    }
    return Calibration(scores, doubt, calibrated_from, calibrated_to, fitted_to)


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
