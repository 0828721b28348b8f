"""The model families: one sklearn Pipeline each, from record fields to a label A–G.

Every model is `Pipeline([("encode", head), ("classify", estimator)])`, so the app, the
API and the CLI send it the same record fields (a DataFrame or a list of dicts). Only the
head differs: `RecordEncoder` for the learned families, `RecordFrame` for the rule model,
which reads two named fields rather than a numeric matrix.

This module is what a pickled rule model refers to: it never imports mlflow, so loading
a model stays light.
"""

import pandas as pd
from scipy.stats import loguniform, randint, uniform
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from core.features import FEATURE_SETS, RecordEncoder, Records, columns_of
from core.rules import RuleClassifier

FAMILIES = ("rules", "logreg", "rf", "hgb")
SEARCHES = ("none", "grid", "random")
RANDOM_CANDIDATES = 6  # candidates a random search draws
RULE_FIELDS = ("secteur_activite", "conso_kwhep_m2_an")

# Small grids: the default search on the 2,200-record sample trains in < 60 s on 2 cores.
GRIDS = {
    "rules": {},
    "logreg": {"classify__logreg__C": [0.1, 1.0, 10.0]},
    "rf": {"classify__min_samples_leaf": [1, 3], "classify__max_features": ["sqrt", 0.5]},
    # Two candidates: a boosted fit costs ~2x a forest's here (7 classes, one tree each).
    "hgb": {"classify__max_leaf_nodes": [15, 31]},
}
DISTRIBUTIONS = {
    "rules": {},
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
}


class RecordFrame(TransformerMixin, BaseEstimator):
    """Records -> DataFrame of the fields the rule model reads, None where missing.

    A field outside the feature set is always None, so a `building-only` rule model never
    sees a consumption even when one is sent: it then answers its fallback (majority) label.
    """

    def __init__(self, feature_set: str = "with-consumption"):
        self.feature_set = feature_set

    def fit(self, X: Records, y=None):
        self.fields_ = tuple(f for f in RULE_FIELDS if f in FEATURE_SETS[self.feature_set])
        return self

    def transform(self, X: Records) -> pd.DataFrame:
        columns = columns_of(X, RULE_FIELDS)
        for name in RULE_FIELDS:
            if name not in self.fields_:
                columns[name][:] = None
        return pd.DataFrame(columns)


def _classifier(family: str, seed: int):
    # class_weight="balanced": labels run from ~27 % (A) down to ~5 % (F) of the rows.
    if family == "rules":
        return RuleClassifier()
    if family == "logreg":
        logreg = LogisticRegression(class_weight="balanced", max_iter=2000)
        return Pipeline([("scale", StandardScaler()), ("logreg", logreg)])
    if family == "rf":  # the workshop's forest
        return RandomForestClassifier(
            n_estimators=300, class_weight="balanced", n_jobs=1, random_state=seed
        )
    if family == "hgb":
        # Early stopping keeps a fit to a few dozen iterations on the sample (7 trees each).
        return HistGradientBoostingClassifier(
            class_weight="balanced", max_iter=200, early_stopping=True, random_state=seed
        )
    raise ValueError(f"unknown model family {family!r}")


def build_pipeline(family: str, feature_set: str, seed: int = 42) -> Pipeline:
    """An unfitted model of `family` on the fields of `feature_set`."""
    head = RecordFrame(feature_set) if family == "rules" else RecordEncoder(feature_set)
    return Pipeline([("encode", head), ("classify", _classifier(family, seed))])


def search_space(family: str, search: str) -> dict:
    """The grid or distributions the search explores; empty when there is nothing to tune."""
    if search == "none":
        return {}
    return (GRIDS if search == "grid" else DISTRIBUTIONS)[family]
