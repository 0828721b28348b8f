"""The model families: one sklearn Pipeline each, from record fields to a label A–G.

Every model is `Pipeline([("encode", head), ("classify", estimator)])`, so the app, the
API and the CLI send it the same record fields (a DataFrame or a list of dicts). Only the
head differs: `RecordEncoder` for the learned families, `RecordFrame` for the rule-based
ones (`rules`, `sector-scale`), which read two named fields rather than a numeric matrix.

`sector-scale` (with the consumption only) is the official scales with each sector's
scale learned from the labels (`core.modeling.rules.SectorScaleClassifier`): the default family,
the best on later records (README, "Models").

`scale` (with the consumption only) is the regulation with a learned part: a forest predicts
from the building fields which official scale applies, and the scales do the rest
(`ScaleClassifier`). It is monotone in the consumption by construction; `rf` is not.

This module is what a saved model refers to: it never imports mlflow, so loading a model
stays light. A class added here that a model holds goes in
`core.tracking.model_format.TRUSTED_TYPES` too (one line), or it cannot be saved nor loaded.
"""

import numpy as np
import pandas as pd
from scipy.stats import loguniform, randint, uniform
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import KFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted

from core.data.feature_sets import CONSUMPTION_FIELDS, FEATURE_SETS
from core.errors import DpeError
from core.modeling import scales
from core.modeling.encoding import PLACEHOLDERS
from core.modeling.features import RecordEncoder, Records, columns_of
from core.modeling.rules import RuleClassifier, SectorScaleClassifier
from core.modeling.scales import LABELS

FAMILIES = ("rules", "sector-scale", "logreg", "rf", "hgb", "scale")
# Families that read the consumption: they only train on a feature set that has it.
NEEDS_CONSUMPTION = {"scale", "sector-scale"}
# The family to train when none is named: the best on later records and in the back-test
# on the ADEME sample (README, "Models").
DEFAULT_MODELS = {"with-consumption": "sector-scale", "building-only": "hgb"}
SEARCHES = ("none", "grid", "random")
RANDOM_CANDIDATES = 6  # candidates a random search draws
RULE_FIELDS = ("secteur_activite", "conso_kwhep_m2_an")
HGB_ITERATIONS = 100  # boosting rounds (7 trees each), learning rate 0.05

# Small grids: the default search on the 2,200-record sample trains in < 60 s on 2 cores.
GRIDS: dict[str, dict] = {
    "rules": {},
    "sector-scale": {},
    "logreg": {"classify__logreg__C": [0.1, 1.0, 10.0]},
    "rf": {"classify__min_samples_leaf": [1, 3], "classify__max_features": ["sqrt", 0.5]},
    # Two candidates: a boosted fit costs ~2x a forest's here (7 classes, 100 rounds).
    "hgb": {"classify__max_leaf_nodes": [15, 31]},
    # The which-scale forest: 100 trees scored as well as 300 in CV, at a third of the time.
    "scale": {"classify__min_samples_leaf": [2, 3, 5]},
}
DISTRIBUTIONS: dict[str, dict] = {
    "rules": {},
    "sector-scale": {},
    "logreg": {"classify__logreg__C": loguniform(1e-2, 1e2)},
    "rf": {
        "classify__min_samples_leaf": randint(1, 6),
        "classify__max_features": uniform(0.1, 0.6),
        "classify__max_depth": [None, 10, 20],
    },
    "hgb": {
        "classify__learning_rate": loguniform(0.03, 0.3),
        "classify__max_leaf_nodes": randint(8, 48),
        "classify__l2_regularization": loguniform(1e-3, 1.0),
    },
    "scale": {
        "classify__min_samples_leaf": randint(1, 8),
        "classify__max_features": uniform(0.1, 0.6),
        "classify__em_steps": [0, 1, 2],
    },
}


class RecordFrame(TransformerMixin, BaseEstimator):
    """Records -> DataFrame of the fields the rule model reads, None where missing.

    A field outside the feature set is always None, so a `building-only` rule model never
    sees a consumption even when one is sent: it then answers its fallback (majority) label.
    """

    def __init__(self, feature_set: str = "with-consumption"):
        self.feature_set = feature_set

    def fit(self, X: Records, y=None):
        self.fields_ = tuple(f for f in RULE_FIELDS if f in FEATURE_SETS[self.feature_set].fields)
        # The sectors seen in training (as `RecordEncoder.known_values_`): serving warns on others.
        sectors = columns_of(X, ["secteur_activite"])["secteur_activite"]
        self.known_values_ = {
            "secteur_activite": sorted({str(value) for value in sectors if value is not None})
        }
        return self

    def transform(self, X: Records) -> pd.DataFrame:
        columns = columns_of(X, RULE_FIELDS)
        for name in RULE_FIELDS:
            if name not in self.fields_:
                columns[name][:] = None
        return pd.DataFrame(columns)


SCALE_FAMILIES = tuple(scales.FAMILIES)
MEDIAN_TIE = 1e-9  # a cumulative probability within this of 1/2 counts as reaching it
EM_FOLDS = 3  # cross-fitting folds of the EM step (each building's family, out of fold)
EM_FLOOR = 1e-3  # keeps every agreeing family possible in the EM step


def encoded_scale_layout(n_columns: int) -> tuple[np.ndarray, np.ndarray]:
    """Where `ScaleClassifier` reads a `RecordEncoder("with-consumption")` matrix of
    `n_columns`: (the building columns, the columns of each official scale's label).

    RecordEncoder's layout: number fields (value, missing flag[, placeholder flag]) in
    field order, category one-hots, then the label on each scale (0..6, -1 when the
    consumption is missing) and the flags of the scale the sector is assigned. The building
    columns are all but the consumption fields' and the scale labels: what a manager knows.
    """
    encoder = RecordEncoder("with-consumption")
    building: list[int] = []
    start = 0
    for name in encoder.number_fields:
        width = 2 + (name in PLACEHOLDERS)
        if name not in CONSUMPTION_FIELDS:
            building += range(start, start + width)
        start += width
    n_scales = len(SCALE_FAMILIES)
    labels = np.arange(n_columns - 2 * n_scales, n_columns - n_scales)
    building += range(start, labels[0])  # the category one-hots
    building += range(labels[-1] + 1, n_columns)  # the scale the sector is assigned
    return np.array(building), labels


def median_label_index(proba: np.ndarray) -> np.ndarray:
    """The weighted median of each row's distribution over the ordered labels A..G: the
    first label whose cumulative probability reaches 1/2 (0 = A .. 6 = G)."""
    return np.argmax(np.cumsum(proba, axis=1) >= 0.5 - MEDIAN_TIE, axis=1)


def label_index_from_proba(model, proba: np.ndarray) -> np.ndarray:
    """The column of `proba` (a row per record, columns A..G) that `model` (a Pipeline or
    its classifier) predicts: the argmax, except the scale model's median.

    Code that turns probabilities into a label (serving, monitoring) should call this: the
    argmax of the scale model's probabilities is not monotone in the consumption.
    """
    final = model.steps[-1][1] if isinstance(model, Pipeline) else model
    if isinstance(final, ScaleClassifier):
        return median_label_index(proba)
    return np.argmax(proba, axis=1)


class ScaleClassifier(ClassifierMixin, BaseEstimator):
    """Which official scale applies to a building, learned; where its consumption falls on
    that scale, by regulation. Input: a `RecordEncoder("with-consumption")` matrix.

    fit: each labelled row is an example of the scale families whose énergie scale maps its
    consumption to its label (a row agreeing with n families counts 1/n for each; with
    none, it is left out). A forest learns P(family | building columns). `em_steps` EM
    steps then re-share each row among its agreeing families by that forest's out-of-fold
    posterior (a row with consumption 0.1 is A on every scale: it says nothing about which
    scale applies, and the uniform share blurs the forest).

    predict_proba: P(label = k) = Σ_f P(f | building) · [label_f(consumption) = k], smoothed
    by `smoothing`; without a consumption, the training labels' frequencies.
    predict: the weighted median of that distribution over A..G (`median_label_index`), not
    its argmax, which is not monotone in the consumption. The median is, by construction:
    each label_f rises with the consumption and P(f | building) ignores it, so the mixture is
    stochastically increasing in the consumption and its median never gives a better label.

    `class_weight` weighs scale families, not labels: "balanced" scored 0.85 CV macro-F1 on
    the sample's training part against 0.91 without, hence None.
    """

    def __init__(
        self,
        n_estimators: int = 100,
        min_samples_leaf: int = 3,
        max_features: str | float = "sqrt",
        class_weight: str | None = None,
        em_steps: int = 1,
        smoothing: float = 0.01,
        random_state: int | None = None,
    ):
        self.n_estimators = n_estimators
        self.min_samples_leaf = min_samples_leaf
        self.max_features = max_features
        self.class_weight = class_weight
        self.em_steps = em_steps
        self.smoothing = smoothing
        self.random_state = random_state

    def _forest(self, n_estimators: int | None = None) -> RandomForestClassifier:
        return RandomForestClassifier(
            n_estimators=n_estimators or self.n_estimators,
            min_samples_leaf=self.min_samples_leaf,
            max_features=self.max_features,
            class_weight=self.class_weight,
            n_jobs=1,
            random_state=self.random_state,
        )

    @staticmethod
    def _split(X) -> tuple[np.ndarray, np.ndarray]:
        """(building columns, scale labels as ints, -1 where the consumption is missing)."""
        X = np.asarray(X, dtype=float)
        building, labels = encoded_scale_layout(X.shape[1])
        scale_labels, assigned = X[:, labels], X[:, labels[-1] + 1 :]
        # A cheap check of the layout: labels -1..6, exactly one assigned scale per row.
        if not (
            np.isin(scale_labels, np.arange(-1, len(LABELS))).all()
            and (assigned.sum(axis=1) == 1).all()
        ):
            raise ValueError("ScaleClassifier needs a RecordEncoder('with-consumption') matrix")
        return X[:, building], scale_labels.astype(int)

    def fit(self, X, y):
        features, scale_labels = self._split(X)
        y = np.asarray(y).astype(str)
        self.classes_ = np.array(LABELS, dtype=object)
        counts = np.array([(y == label).sum() for label in LABELS], dtype=float)
        self.prior_ = counts / max(counts.sum(), 1.0)
        y_index = np.array([LABELS.index(label) for label in y], dtype=int)
        agree = scale_labels == y_index[:, None]  # a missing consumption (-1) agrees with none
        share = agree / np.maximum(agree.sum(axis=1), 1)[:, None]
        for step in range(self.em_steps):
            share = self._em_step(features, agree, share, step)
        self.family_model_ = None
        if agree.any():
            self.family_model_ = self._forest().fit(*_family_examples(features, share))
        return self

    def _em_step(self, features, agree, share, step: int) -> np.ndarray:
        """Each row's share among its agreeing families, by a forest fitted without it."""
        rows = np.flatnonzero(agree.any(axis=1))
        if len(rows) < 2 * EM_FOLDS:
            return share
        posterior = np.zeros(share.shape)
        seed = None if self.random_state is None else self.random_state + step
        for fitted, held in KFold(EM_FOLDS, shuffle=True, random_state=seed).split(rows):
            forest = self._forest(max(self.n_estimators // 3, 1))
            forest.fit(*_family_examples(features[rows[fitted]], share[rows[fitted]]))
            posterior[np.ix_(rows[held], forest.classes_)] = forest.predict_proba(
                features[rows[held]]
            )
        weighted = agree * (posterior + EM_FLOOR)
        return weighted / np.maximum(weighted.sum(axis=1, keepdims=True), EM_FLOOR)

    def _families(self, X) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """P(family | building) (n, families), the label on each scale, and the rows with
        no consumption."""
        check_is_fitted(self, "prior_")
        features, scale_labels = self._split(X)
        weights: np.ndarray = np.zeros(scale_labels.shape)
        if self.family_model_ is not None and len(features):
            weights[:, self.family_model_.classes_] = _forest_proba(self.family_model_, features)
        else:  # no training row agreed with any scale: every scale alike
            weights[:] = 1.0 / len(SCALE_FAMILIES)
        return weights, scale_labels, np.asarray((scale_labels < 0).any(axis=1))

    def predict_proba(self, X) -> np.ndarray:
        weights, scale_labels, missing = self._families(X)
        rows = np.arange(len(weights))
        mixture = np.zeros((len(weights), len(LABELS)))
        for family in range(len(SCALE_FAMILIES)):  # row by row: one record = in a batch
            mixture[rows, scale_labels[:, family]] += weights[:, family]
        mixture[missing] = self.prior_  # (their -1 labels put weight on G: overwritten)
        return (1 - self.smoothing) * mixture + self.smoothing / len(LABELS)

    def predict(self, X) -> np.ndarray:
        return self.classes_[median_label_index(self.predict_proba(X))]


def _forest_proba(forest: RandomForestClassifier, features: np.ndarray) -> np.ndarray:
    """`forest.predict_proba(features)`, bit for bit (its trees summed in its order, as it
    does with n_jobs=1), without its per-call dispatch: ~10x faster for one record."""
    data = np.ascontiguousarray(features, dtype=np.float32)
    if data.shape[1] != forest.n_features_in_:  # what forest.predict_proba would check
        raise ValueError(
            f"{data.shape[1]} building columns for a forest of {forest.n_features_in_}"
        )
    total = np.zeros((len(data), len(forest.classes_)))
    for tree in forest.estimators_:
        total += tree.tree_.predict(data)[:, : len(forest.classes_)]
    return total / len(forest.estimators_)


def _family_examples(features, share) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One example per (row, family) with a share: features, family index, weight."""
    rows, families = np.nonzero(share > 0)
    return features[rows], families, share[rows, families]


def _classifier(family: str, seed: int):
    # class_weight="balanced": labels run from ~27 % (A) down to ~5 % (F) of the rows.
    if family == "rules":
        return RuleClassifier()
    if family == "sector-scale":
        return SectorScaleClassifier()
    if family == "logreg":
        logreg = LogisticRegression(class_weight="balanced", max_iter=2000)
        return Pipeline([("scale", StandardScaler()), ("logreg", logreg)])
    if family == "rf":  # the workshop's forest
        return RandomForestClassifier(
            n_estimators=300, class_weight="balanced", n_jobs=1, random_state=seed
        )
    if family == "scale":
        return ScaleClassifier(random_state=seed)
    if family == "hgb":
        # A fixed number of slower steps rather than early stopping: early stopping scores
        # on a random 10 % of the training rows, which made a fit's macro-F1 on later
        # records swing by +-0.03 with the seed (README, "Model quality on later records").
        return HistGradientBoostingClassifier(
            class_weight="balanced",
            max_iter=HGB_ITERATIONS,
            learning_rate=0.05,
            early_stopping=False,
            random_state=seed,
        )
    raise ValueError(f"unknown model family {family!r}")


def check_family(family: str, feature_set: str) -> None:
    """A DpeError when `family` cannot train on `feature_set`."""
    if family in NEEDS_CONSUMPTION and not FEATURE_SETS[feature_set].has_consumption:
        raise DpeError(
            f"the {family} model reads the consumption: it trains with "
            f"--features with-consumption, not {feature_set}"
        )


def build_pipeline(family: str, feature_set: str, seed: int = 42) -> Pipeline:
    """An unfitted model of `family` on the fields of `feature_set`."""
    check_family(family, feature_set)
    rule_based = family in ("rules", "sector-scale")
    head = RecordFrame(feature_set) if rule_based else RecordEncoder(feature_set)
    return Pipeline([("encode", head), ("classify", _classifier(family, seed))])


def search_space(family: str, search: str) -> dict:
    """The grid or distributions the search explores; empty when there is nothing to tune."""
    if search == "none":
        return {}
    return (GRIDS if search == "grid" else DISTRIBUTIONS)[family]
