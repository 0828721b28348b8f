"""The rule models: the official label scales (`core.modeling.scales`) as classifiers, with the
scale of each sector as the regulation assigns it (`RuleClassifier`) or as the labels show
diagnosticians use them (`ScaleMixtureClassifier`, the `sector-scale` family; before it,
`SectorScaleClassifier`, which champions promoted earlier still hold)."""

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin

from core.modeling.rule_state import (
    MIN_CONFIDENCE,
    SCALE_FAMILIES,
    RuleState,
    ScaleMixtureState,
    SectorScaleState,
)
from core.modeling.scales import (
    FAMILIES,
    LABELS,
    SCALES,
    family_for_sector,
    label_for,
    label_index,
    sector_key,
)


class RuleClassifier(RuleState, ClassifierMixin, BaseEstimator):
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


class SectorScaleClassifier(SectorScaleState, ClassifierMixin, BaseEstimator):
    """The official scales, with the scale of each sector learned from the labels.

    The regulation assigns each sector a scale, but diagnosticians often use another one:
    on the ADEME sample, « J : structures d'accueil pour personnes âgées » are labelled
    on the « autres » scale in 80 % of records and on the assigned « occupation continue »
    one in 10 %. fit: for each sector (`sector_key`: its ERP code, so new spellings of a
    known code are known), count the training records whose label each scale reproduces,
    plus `prior` pseudo-records for the scale the regulation assigns; the sector's scale
    is the one with the most. Records every scale agrees on (consumption 0 or the 0.1
    placeholder: A on every scale, and A in all 407 such records of the sample) say
    nothing about the scale and are left out of the counts. A sector never seen in
    training (an ERP type the data lacked, a free-text value) takes the regulation's scale.

    predict: the consumption's label on the sector's scale (monotone in the consumption);
    without a consumption, the most frequent training label. predict_proba puts on that
    label the share of the sector's training records it was right for (at least
    `MIN_CONFIDENCE`), the rest spread evenly, so its argmax is the predicted label.
    """

    def __init__(self, prior: float = 2.0):
        self.prior = prior

    def fit(self, X: pd.DataFrame, y):
        families = list(FAMILIES)
        conso = pd.to_numeric(X["conso_kwhep_m2_an"], errors="coerce").to_numpy(dtype=float)
        y = np.asarray(y).astype(str)
        y_index = np.array([LABELS.index(label) for label in y])
        agree = np.column_stack([label_index(conso, f) == y_index for f in families])
        informative = agree.any(axis=1) & ~agree.all(axis=1)
        sectors = np.asarray(X["secteur_activite"], dtype=object)
        keys = np.array([sector_key(s) for s in sectors], dtype=object)
        self.family_by_sector_, self.confidence_by_sector_ = {}, {}
        for key in pd.unique(keys[informative]):
            rows = informative & (keys == key)
            counts = agree[rows].sum(axis=0).astype(float)
            assigned = family_for_sector(sectors[np.argmax(rows)])  # the regulation's
            counts[families.index(assigned)] += self.prior
            best = int(np.argmax(counts))
            self.family_by_sector_[key] = families[best]
            # Right on every uninformative record of the sector too (they are A everywhere).
            sector = (keys == key) & ~np.isnan(conso)
            self.confidence_by_sector_[key] = float(
                (agree[sector, best].sum() + 1) / (sector.sum() + 2)
            )
        self.classes_ = np.array(LABELS, dtype=object)
        counts = np.array([(y == label).sum() for label in LABELS], dtype=float)
        self.prior_ = counts / max(counts.sum(), 1.0)
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        conso = pd.to_numeric(X["conso_kwhep_m2_an"], errors="coerce").to_numpy(dtype=float)
        sectors = list(X["secteur_activite"])
        families = np.array([self.family(sector) for sector in sectors], dtype=object)
        confidence = np.array(
            [self.confidence_by_sector_.get(sector_key(s), MIN_CONFIDENCE) for s in sectors]
        ).clip(MIN_CONFIDENCE, None)
        known = np.flatnonzero(~np.isnan(conso))
        labels = np.zeros(len(conso), dtype=int)
        for family in set(families[known]):
            rows = known[families[known] == family]
            labels[rows] = label_index(conso[rows], family).astype(int)
        proba = np.tile(self.prior_, (len(conso), 1))  # no consumption: the label frequencies
        proba[known] = ((1 - confidence[known]) / (len(LABELS) - 1))[:, None]
        proba[known, labels[known]] = confidence[known]
        return proba

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


EM_STEPS = 50  # EM iterations of the scale shares (they settle in ~20 on the sample)
MONOTONE_STEP = 0.1  # weight moved to the most used scale while a mix is not monotone


class ScaleMixtureClassifier(ScaleMixtureState, ClassifierMixin, BaseEstimator):
    """The official scales, with how often the labels follow each one, per sector.

    With the consumption known, the label is its class on one of the four official scales; the
    doubt is which scale the diagnostician used. « autres tertiaires non ERP » records follow
    the « autres » scale mostly, « bureaux » often; a sector never seen may follow any.

    fit: for each sector (`sector_key`: its ERP code), the shares of the scales its training
    labels follow, P(scale | sector), by EM: a record whose label two scales give counts for
    both in proportion to their shares. `prior` pseudo-records spread as the scales' use over
    all sectors, plus `regulation` on the scale the regulation assigns the sector, keep a
    small sector from certainty. Records every scale agrees on (consumption 0 or the 0.1
    placeholder: A everywhere) say nothing about the scale and are left out. A sector never
    seen gets the pseudo-records alone: the scales' overall use, leaning to its regulatory one.
    `shares_` and `records_` (the informative records of each sector) stay inspectable: the
    Predict page shows them.

    predict_proba: P(label = k) = Σ_scale P(scale | sector) · [its label of the consumption = k],
    smoothed by `smoothing`; without a consumption, the training labels' frequencies.
    predict: the most probable label. fit checks that it never gets better as the consumption
    rises for every share vector the model can use (`monotone_shares`): where two scales
    together would outweigh a third at one consumption and not at a higher one, weight moves to
    the most used scale until it is monotone (no sector of the ADEME sample needs it).
    """

    def __init__(self, prior: float = 2.0, regulation: float = 2.0, smoothing: float = 0.01):
        self.prior = prior
        self.regulation = regulation
        self.smoothing = smoothing

    def fit(self, X: pd.DataFrame, y):
        conso = pd.to_numeric(X["conso_kwhep_m2_an"], errors="coerce").to_numpy(dtype=float)
        y = np.asarray(y).astype(str)
        y_index = np.array([LABELS.index(label) for label in y])
        agree = np.column_stack([label_index(conso, f) == y_index for f in SCALE_FAMILIES])
        informative = agree.any(axis=1) & ~agree.all(axis=1)
        sectors = np.asarray(X["secteur_activite"], dtype=object)
        keys = np.array([sector_key(s) for s in sectors], dtype=object)
        overall = scale_shares(agree[informative], np.ones(len(SCALE_FAMILIES)))
        self.overall_shares_ = overall.tolist()
        self.unseen_shares_ = {
            family: monotone_shares(scale_shares(agree[:0], self._pseudo_records(family))).tolist()
            for family in SCALE_FAMILIES
        }
        self.shares_, self.records_ = {}, {}
        for key in pd.unique(keys[informative]):
            rows = informative & (keys == key)
            pseudo = self._pseudo_records(family_for_sector(sectors[np.argmax(rows)]))
            self.shares_[key] = monotone_shares(scale_shares(agree[rows], pseudo)).tolist()
            self.records_[key] = int(rows.sum())
        self.classes_ = np.array(LABELS, dtype=object)
        counts = np.array([(y == label).sum() for label in LABELS], dtype=float)
        self.label_prior_ = counts / max(counts.sum(), 1.0)
        return self

    def _pseudo_records(self, family: str) -> np.ndarray:
        """`prior` records spread as the scales' overall use, `regulation` more on `family`."""
        pseudo = self.prior * np.asarray(self.overall_shares_)
        pseudo[SCALE_FAMILIES.index(family)] += self.regulation
        return pseudo

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        conso = pd.to_numeric(X["conso_kwhep_m2_an"], errors="coerce").to_numpy(dtype=float)
        sectors = list(X["secteur_activite"])
        shares = {s: list(self.sector_shares(s)[0].values()) for s in set(sectors)}
        weights = np.array([shares[s] for s in sectors], dtype=float).reshape(len(conso), -1)
        known = np.flatnonzero(~np.isnan(conso))
        mixture = np.tile(self.label_prior_, (len(conso), 1))  # no consumption
        mixture[known] = 0.0
        for column, family in enumerate(SCALE_FAMILIES):
            labels = label_index(conso[known], family).astype(int)
            mixture[known, labels] += weights[known, column]
        return (1 - self.smoothing) * mixture + self.smoothing / len(LABELS)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


def scale_shares(agree: np.ndarray, pseudo: np.ndarray, steps: int = EM_STEPS) -> np.ndarray:
    """The shares of the scales that maximise the likelihood of records whose label each scale
    does or does not give (`agree`: rows x scales), with `pseudo` records per scale (MAP)."""
    shares = pseudo / pseudo.sum()
    for _ in range(steps if len(agree) else 0):
        responsibility = agree * shares
        responsibility /= responsibility.sum(axis=1, keepdims=True)
        counts = responsibility.sum(axis=0) + pseudo
        shares = counts / counts.sum()
    return shares


def monotone_shares(shares: np.ndarray) -> np.ndarray:
    """`shares`, moved toward the most used scale until the most probable label of their
    mixture never gets better as the consumption rises."""
    # The labels are constant between the scales' bounds (each bound included below it):
    # one consumption per interval checks every consumption.
    bounds = sorted({bound for f in SCALE_FAMILIES for bound in SCALES[("energie", f)]})
    grid = np.array([*bounds, bounds[-1] + 1.0])
    labels = np.column_stack([label_index(grid, f).astype(int) for f in SCALE_FAMILIES])
    top = np.eye(len(shares))[int(np.argmax(shares))]
    while True:
        mixture = np.zeros((len(grid), len(LABELS)))
        for column in range(len(shares)):
            mixture[np.arange(len(grid)), labels[:, column]] += shares[column]
        if (np.diff(np.argmax(mixture, axis=1)) >= 0).all():
            return shares
        shares = (1 - MONOTONE_STEP) * shares + MONOTONE_STEP * top
