"""An experiment for building-only labels (issue 19, item 5): a predicted distribution of
log(consumption) passed through each sector's official scales.

`QuantileScaleModel` reads records as `train` gives them with the consumption: the building
fields are its only input (`RecordEncoder("building-only")`, as `hgb` reads them); the
consumption is its training target and is never read to predict. The sample's consumptions
are bimodal: a fifth are ADEME's placeholder 0.1 (or 0), A on every scale. So, a hurdle: a
boosted classifier gives P(placeholder | building); on the other records, one
`HistGradientBoostingRegressor(loss="quantile")` per quantile of log(consumption); and the
sectors' scale shares (`ScaleMixtureClassifier` on the sector, consumption and label).
predict_proba: the quantiles (sorted, so they never cross) give a piecewise-linear CDF of
log(consumption), extended linearly to 0 and 1 beyond the outer ones; P(label = k) =
P(placeholder)·[k = A] + (1 − P(placeholder))·Σ_scale P(scale | sector) · P(consumption in
the scale's class k). `balanced` divides by the
training label frequencies (as `hgb`'s class_weight="balanced" weighs them) and renormalises.

It is not a family `train` can build: a building-only model's records carry no consumption
(`core.modeling.train.labelled_rows`), and every fit path would have to pass it as a target.
`bench.bench_model_quality --families quantile-scale` measures it first (README, "Models").
"""

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

from core.data.feature_sets import CONSUMPTION
from core.modeling.features import RecordEncoder, columns_of
from core.modeling.rules import SCALE_FAMILIES, ScaleMixtureClassifier
from core.modeling.scales import LABELS, SCALES

QUANTILES = (0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95)
LOWEST = 0.1  # kWhEP/m²/an: ADEME's placeholder; 0 is logged as it
SPACING = 1e-6  # keeps sorted quantiles strictly increasing, so the CDF is defined


class QuantileScaleModel(ClassifierMixin, BaseEstimator):
    def __init__(
        self,
        quantiles: tuple[float, ...] = QUANTILES,
        max_iter: int = 100,
        learning_rate: float = 0.1,
        balanced: bool = False,
        random_state: int | None = None,
    ):
        self.quantiles = quantiles
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.balanced = balanced
        self.random_state = random_state

    def fit(self, X: pd.DataFrame, y):
        y = np.asarray(y).astype(str)
        consumption = pd.to_numeric(X[CONSUMPTION], errors="coerce").to_numpy(dtype=float)
        known = ~np.isnan(consumption)
        self.encoder_ = RecordEncoder("building-only").fit(X)
        features = self.encoder_.transform(X)[known]
        placeholder = consumption[known] <= LOWEST
        self.placeholder_share_ = float(placeholder.mean())
        self.placeholder_model_ = None
        if 0 < placeholder.sum() < len(placeholder):
            self.placeholder_model_ = HistGradientBoostingClassifier(**self._boosting()).fit(
                features, placeholder
            )
        target = np.log(consumption[known][~placeholder])
        self.regressors_ = [
            HistGradientBoostingRegressor(loss="quantile", quantile=q, **self._boosting()).fit(
                features[~placeholder], target
            )
            for q in self.quantiles
        ]
        self.shares_ = ScaleMixtureClassifier().fit(X[["secteur_activite", CONSUMPTION]], y)
        self.classes_ = np.array(LABELS, dtype=object)
        counts = np.array([(y == label).sum() for label in LABELS], dtype=float)
        self.label_prior_ = (counts + 1) / (counts.sum() + len(LABELS))
        return self

    def _boosting(self) -> dict:
        return {
            "max_iter": self.max_iter,
            "learning_rate": self.learning_rate,
            "early_stopping": False,
            "random_state": self.random_state,
        }

    def placeholder_proba(self, X) -> np.ndarray:
        """P(the consumption is ADEME's placeholder) for each record."""
        if self.placeholder_model_ is None:
            return np.full(len(self.encoder_.transform(X)), self.placeholder_share_)
        return self.placeholder_model_.predict_proba(self.encoder_.transform(X))[:, 1]

    def quantile_values(self, X) -> np.ndarray:
        """The predicted quantiles of log(consumption), a row per record, sorted."""
        features = self.encoder_.transform(X)  # the building fields only
        found = np.sort(np.column_stack([r.predict(features) for r in self.regressors_]), axis=1)
        return found + SPACING * np.arange(found.shape[1])

    def predict_proba(self, X) -> np.ndarray:
        values = self.quantile_values(X)
        levels = np.asarray(self.quantiles, dtype=float)
        # Linear tails at the outer segments' slopes, down to 0 and up to 1.
        low = values[:, 0] - levels[0] * (values[:, 1] - values[:, 0]) / (levels[1] - levels[0])
        high = values[:, -1] + (1 - levels[-1]) * (values[:, -1] - values[:, -2]) / (
            levels[-1] - levels[-2]
        )
        knots = np.column_stack([low, values, high])
        cdf_levels = np.concatenate([[0.0], levels, [1.0]])
        sectors = columns_of(X, ["secteur_activite"])["secteur_activite"]
        proba = np.zeros((len(values), len(LABELS)))
        for row, sector in enumerate(sectors):
            shares, _ = self.shares_.sector_shares(sector)
            for family in SCALE_FAMILIES:
                bounds = np.log(np.asarray(SCALES[("energie", family)], dtype=float))
                cdf = np.interp(bounds, knots[row], cdf_levels)
                classes = np.diff(np.concatenate([[0.0], cdf, [1.0]]))
                proba[row] += shares[family] * classes
        placeholder = self.placeholder_proba(X)
        proba *= (1 - placeholder)[:, None]
        proba[:, 0] += placeholder
        if self.balanced:
            proba /= self.label_prior_
        return proba / proba.sum(axis=1, keepdims=True)

    def predict(self, X) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]
