"""The building-only experiment `bench.quantile_scale`: label probabilities from a predicted
distribution of the consumption, passed through the sectors' scales."""

import numpy as np
import pandas as pd
import pytest

from bench.quantile_scale import QuantileScaleModel
from core.data.feature_sets import CONSUMPTION
from core.modeling.scales import LABELS, family_for_sector, label_for

OFFICES = "W : Administrations, banques, bureaux"
SHOPS = "M : Magasins de vente, centres commerciaux"


def buildings(rows: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Offices and shops whose consumption rises with their period's age, labelled on their
    sector's scale."""
    rng = np.random.default_rng(seed)
    old = rng.random(rows) < 0.5
    conso = np.exp(rng.normal(np.where(old, 6.0, 4.2), 0.1))
    sectors = np.where(rng.random(rows) < 0.5, OFFICES, SHOPS)
    X = pd.DataFrame(
        {
            "secteur_activite": sectors,
            "periode_construction": np.where(old, "avant 1948", "après 2012"),
            "surface_utile": rng.uniform(100, 2000, rows),
            "annee_construction": np.where(old, 1930, 2015),
            "version_dpe": 2.2,
            "surface_shon": rng.uniform(100, 2000, rows),
            CONSUMPTION: conso,
        }
    )
    y = np.array([label_for(c, family_for_sector(s)) for c, s in zip(conso, sectors, strict=True)])
    return X, y


@pytest.fixture(scope="module")
def fitted():
    X, y = buildings(400, seed=0)
    return QuantileScaleModel(random_state=0).fit(X, y)


def test_probabilities_are_a_distribution_over_the_labels(fitted):
    X, _ = buildings(50, seed=1)
    proba = fitted.predict_proba(X)
    assert proba.shape == (50, len(LABELS))
    assert (proba >= 0).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert list(fitted.classes_) == list(LABELS)


def test_the_building_decides_not_the_consumption(fitted):
    X, y = buildings(200, seed=2)
    without = X.drop(columns=CONSUMPTION)
    np.testing.assert_array_equal(fitted.predict_proba(X), fitted.predict_proba(without))
    # Old buildings consume ~6x more: their labels are worse, and mostly right.
    old = (X["periode_construction"] == "avant 1948").to_numpy()
    predicted = np.array([LABELS.index(label) for label in fitted.predict(without)])
    assert predicted[old].min() > predicted[~old].max()
    assert (fitted.predict(without) == y).mean() > 0.6
