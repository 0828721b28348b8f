"""Fast engines for tree ensembles: sklearn's probabilities, sooner.

sklearn's RandomForest spends most of its time for a few records dispatching its trees one
call at a time (~13 ms for one record and 300 trees), and for a big batch walks the trees
one row at a time on one core. So:

- forests (RandomForest, ExtraTrees) run in `ForestEngine`: every tree flattened into a
  few arrays (`core.serving.forest_arrays.FlatForest`), walked by one numba kernel with no
  Python between trees (~40 µs for one record), eight rows at a time so that the CPU
  follows several paths at once, and batches of `PARALLEL_ROWS` or more split over the
  CPUs (the kernel releases the GIL). It gives bit-identical probabilities: the same
  comparisons (float32 features against thresholds rounded down to float32, which decides
  every comparison as float64 does), the leaves' values summed in tree order, divided by
  the number of trees, as sklearn does;
- HistGradientBoosting runs small batches in treelite's GTIL, one native call for all trees;
  sklearn's own code is faster for big ones.

`core.serving.champion.Champion.compile` checks every engine against sklearn before using it (a
server's quick start walks the forest with numpy for its first second, unchecked: see
`core.serving.champion`). This module imports numba (~0.2 s): `core.serving.champion`
imports it when it builds an engine.
"""

import functools
import logging
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

from core.serving.forest_arrays import FlatForest

log = logging.getLogger(__name__)

PARALLEL_ROWS = 256  # from this many rows, a batch is split over the CPUs
CPUS = len(os.sched_getaffinity(0))

Engine = Callable[[np.ndarray], np.ndarray]  # encoded matrix -> probabilities (n, classes)


def fast_engines(classifier) -> list[tuple[str, tuple[str, ...], Engine]]:
    """Candidate engines for a tree ensemble: (name, batch sizes it serves among "small"
    and "large", its predict_proba on an encoded matrix). None for other classifiers."""
    from sklearn.ensemble import (
        ExtraTreesClassifier,
        HistGradientBoostingClassifier,
        RandomForestClassifier,
    )

    if isinstance(classifier, RandomForestClassifier | ExtraTreesClassifier):
        if classifier.n_outputs_ != 1:
            return []
        return [("numba-forest", ("small", "large"), ForestEngine(classifier))]
    if isinstance(classifier, HistGradientBoostingClassifier):
        compiled = _treelite(classifier)
        return [("treelite", ("small",), compiled)] if compiled else []
    return []


# --- Forests -------------------------------------------------------------------------------


class ForestEngine:
    """A RandomForest or ExtraTrees classifier's predict_proba, in one numba kernel."""

    def __init__(self, forest):
        self.forest = forest
        self.flat = FlatForest(forest)
        self.n_classes = self.flat.n_classes

    def __call__(self, matrix: np.ndarray) -> np.ndarray:
        data = self.flat.as_float32(matrix)  # of the forest's width: the kernel reads unchecked
        if np.isnan(data).any():  # sklearn's own rules for missing values apply
            return self.forest.predict_proba(data)
        total = np.zeros((len(data), self.n_classes))
        if len(data) < PARALLEL_ROWS or CPUS == 1:
            self._walk(data, total)
        else:
            bounds = np.linspace(0, len(data), CPUS + 1).astype(int)
            parts = [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
            list(_pool().map(lambda rows: self._walk(data[rows], total[rows]), parts))
        return total / len(self.flat.roots)

    def _walk(self, data: np.ndarray, total: np.ndarray) -> None:
        flat = self.flat
        _walk(data, flat.roots, flat.features, flat.thresholds, flat.children, flat.values, total)


def _compiled(**options) -> Callable:
    """numba.njit, releasing the GIL; cached on disk (compiled once, ~0.5 s, then loaded)
    where numba can write its cache (__pycache__ here, or ~/.cache)."""

    def compile_(function):
        try:
            return numba.njit(nogil=True, cache=True, **options)(function)
        except RuntimeError:  # nowhere to write the cache: compiled in each process
            return numba.njit(nogil=True, **options)(function)

    return compile_


@_compiled(inline="always")
def _step(data, row, node, features, thresholds, children):
    """The child of `node` the row goes to: left (<=) or right, without a branch; a leaf
    is its own child."""
    return children[2 * node + (data[row, features[node]] > thresholds[node])]


@_compiled()
def _walk(data, roots, features, thresholds, children, values, total):
    """Add each tree's leaf values to `total`, trees in order. Eight rows go down a tree
    together, each in a local variable of its own, so that the CPU follows eight paths at
    once: 1.4× as fast as one row at a time, or as eight rows kept in an array."""
    n_rows, n_classes = data.shape[0], total.shape[1]
    whole = n_rows - n_rows % 8
    for root in roots:
        for r in range(0, whole, 8):
            n0 = n1 = n2 = n3 = n4 = n5 = n6 = n7 = root
            while True:
                m0 = _step(data, r, n0, features, thresholds, children)
                m1 = _step(data, r + 1, n1, features, thresholds, children)
                m2 = _step(data, r + 2, n2, features, thresholds, children)
                m3 = _step(data, r + 3, n3, features, thresholds, children)
                m4 = _step(data, r + 4, n4, features, thresholds, children)
                m5 = _step(data, r + 5, n5, features, thresholds, children)
                m6 = _step(data, r + 6, n6, features, thresholds, children)
                m7 = _step(data, r + 7, n7, features, thresholds, children)
                if (m0, m1, m2, m3, m4, m5, m6, m7) == (n0, n1, n2, n3, n4, n5, n6, n7):
                    break  # all eight at their leaf
                n0, n1, n2, n3, n4, n5, n6, n7 = m0, m1, m2, m3, m4, m5, m6, m7
            for column in range(n_classes):
                total[r, column] += values[n0, column]
                total[r + 1, column] += values[n1, column]
                total[r + 2, column] += values[n2, column]
                total[r + 3, column] += values[n3, column]
                total[r + 4, column] += values[n4, column]
                total[r + 5, column] += values[n5, column]
                total[r + 6, column] += values[n6, column]
                total[r + 7, column] += values[n7, column]
        for r in range(whole, n_rows):  # the last rows, one at a time
            node, child = root, _step(data, r, root, features, thresholds, children)
            while child != node:
                node, child = child, _step(data, r, child, features, thresholds, children)
            for column in range(n_classes):
                total[r, column] += values[node, column]


@functools.cache
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=CPUS, thread_name_prefix="dpe-forest")


# --- Gradient boosting ---------------------------------------------------------------------


def _treelite(classifier) -> Engine | None:
    try:
        import treelite.gtil
        import treelite.sklearn

        model = treelite.sklearn.import_model(classifier)
    except Exception as error:  # a model treelite cannot import runs in sklearn
        log.warning("treelite cannot compile %s (%s)", type(classifier).__name__, error)
        return None

    def predict(matrix: np.ndarray) -> np.ndarray:
        # float64: sklearn compares HistGradientBoosting's thresholds with float64 features.
        data = np.ascontiguousarray(matrix, dtype=np.float64)
        # One thread: for a few rows, starting OpenMP workers costs more than the trees.
        return treelite.gtil.predict(model, data, nthread=1).reshape(len(data), -1)

    return predict
