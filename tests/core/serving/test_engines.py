"""core.serving.engines: each fast engine gives sklearn's probabilities on what it serves."""

import numpy as np
import pytest
from sklearn.ensemble import (
    ExtraTreesClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
)

from core.serving import engines
from core.serving.champion import TOLERANCE
from core.serving.forest_arrays import BLOCK_ROWS, NumpyForest


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 6)) * [1, 10, 1e3, 1e-3, 1, 1]
    y = np.array(list("ABCDEFG"))[np.digitize(X[:, 0] + X[:, 2] / 1e3, [-1.5, -1, -0.5, 0, 0.5, 1])]
    return X, y


@pytest.mark.parametrize("forest", [RandomForestClassifier, ExtraTreesClassifier])
def test_forests_are_walked_with_sklearns_exact_probabilities(forest, data):
    X, y = data
    model = forest(n_estimators=30, random_state=0).fit(X, y)
    [(name, sizes, engine)] = engines.fast_engines(model)
    assert (name, sizes) == ("numba-forest", ("small", "large"))
    for rows in (X[:1], X[:7], X):  # one row, fewer than eight, split over the CPUs
        assert np.array_equal(engine(rows), model.predict_proba(rows.astype(np.float32)))


def test_a_threshold_between_two_float32_values_is_decided_as_sklearn_decides(data):
    X, y = data
    model = RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y)
    engine = engines.ForestEngine(model)
    tree = model.estimators_[0].tree_
    feature, threshold = tree.feature[0], tree.threshold[0]
    below = np.float32(threshold)  # the float32 nearest the threshold, on either side
    edge = np.repeat(X[:1], 3, axis=0).astype(np.float32)
    edge[:, feature] = [np.nextafter(below, -np.inf), below, np.nextafter(below, np.inf)]
    assert np.array_equal(engine(edge), model.predict_proba(edge))


def test_missing_values_are_left_to_sklearn(data):
    X, y = data
    X = X.copy()
    X[::5, 1] = np.nan
    model = RandomForestClassifier(n_estimators=10, random_state=0).fit(X, y)
    engine = engines.ForestEngine(model)
    assert np.array_equal(engine(X), model.predict_proba(X.astype(np.float32)))


def test_gradient_boosting_gets_treelite_for_small_batches(data):
    X, y = data
    model = HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(X, y)
    [(name, sizes, engine)] = engines.fast_engines(model)
    assert (name, sizes) == ("treelite", ("small",))
    # treelite sums leaf values in float32: close to sklearn's, within what Champion accepts.
    assert np.abs(engine(X[:50]) - model.predict_proba(X[:50])).max() <= TOLERANCE


def test_other_classifiers_have_no_engine(data):
    from sklearn.linear_model import LogisticRegression

    X, y = data
    scaled = X / X.std(axis=0)  # the columns' scales differ by 1e6: lbfgs would not converge
    assert engines.fast_engines(LogisticRegression().fit(scaled, y)) == []


@pytest.mark.parametrize("forest", [RandomForestClassifier, ExtraTreesClassifier])
def test_the_quick_starts_numpy_walk_gives_sklearns_exact_probabilities(forest, data):
    X, y = data
    model = forest(n_estimators=30, random_state=0).fit(X, y)
    walk = NumpyForest(model)
    many = np.vstack([X] * 2)  # more rows than a block the walk takes at once
    assert len(many) > BLOCK_ROWS
    for rows in (X[:1], X[:7], many):
        assert np.array_equal(walk(rows), model.predict_proba(rows.astype(np.float32)))
    with pytest.raises(ValueError, match="features"):  # it indexes the matrix unchecked
        walk(X[:3, :-1])
