"""The rule model: the official label scales (`core.scales`) as a classifier."""

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin

from core.scales import LABELS, family_for_sector, label_for


class RuleClassifier(ClassifierMixin, BaseEstimator):
    """The regulation as a model: the energy scale of the building's sector applied to its
    consumption. Without a consumption it answers the training set's most frequent label.

    `smoothing` keeps a little probability on other classes so log loss stays finite.
    """

    def __init__(self, smoothing: float = 0.01):
        self.smoothing = smoothing

    def fit(self, X: pd.DataFrame, y):
        self.classes_ = np.array(LABELS)
        counts = pd.Series(np.asarray(y)).value_counts()
        self.fallback_label_ = counts.index[0] if len(counts) else "D"
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        labels = self._rule_labels(X)
        proba = np.full((len(X), len(LABELS)), self.smoothing / (len(LABELS) - 1))
        proba[np.arange(len(X)), [LABELS.index(lab) for lab in labels]] = 1 - self.smoothing
        return proba

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return np.asarray(self._rule_labels(X), dtype=object)

    def _rule_labels(self, X: pd.DataFrame) -> list[str]:
        sectors = X["secteur_activite"].tolist()
        conso = pd.to_numeric(X["conso_kwhep_m2_an"], errors="coerce").to_numpy(dtype=float)
        labels = []
        for sector, value in zip(sectors, conso, strict=True):
            label = label_for(value, family_for_sector(sector))
            labels.append(label or self.fallback_label_)
        return labels
