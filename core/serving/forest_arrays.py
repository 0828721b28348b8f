"""A forest's trees as flat arrays, and a walk of them with numpy alone.

`FlatForest(forest)` lays every tree of a RandomForest or ExtraTrees classifier (sklearn's, or
the arrays `core.serving.light_reader` reads) end to end in a few arrays: each node's feature,
threshold, two children and leaf values. `core.serving.engines.ForestEngine` walks them in a
numba kernel. `NumpyForest` walks them with numpy: all the trees of a block of rows at once,
one level per step (~0.5 ms for one record and 300 trees, against ~40 µs in numba), with
nothing to import or load but numpy. A server answers with it while numba (~0.5 s to import,
as long again to load its compiled kernel) loads in the background (`core.serving.champion`).

Both give sklearn's probabilities bit for bit: the same comparisons (float32 features against
thresholds rounded down to float32, which decides every comparison as float64 does) and the
leaves' values summed in tree order, then divided by the number of trees.
"""

import numpy as np

BLOCK_ROWS = 512  # rows walked together by NumpyForest: bounds its (rows x trees) arrays


class FlatForest:
    """The trees of `forest` (its `estimators_`, each with a `tree_`) as flat arrays.

    `children[2 * node]` and `children[2 * node + 1]` are a node's left (<=) and right
    children; a leaf is its own child on both sides, so a walk stops where a node does not
    move. `roots` holds each tree's first node; `values` the leaves' class values."""

    def __init__(self, forest):
        self.n_features = forest.n_features_in_
        trees = [estimator.tree_ for estimator in forest.estimators_]
        self.n_classes = len(forest.classes_)
        starts = np.cumsum([0] + [tree.node_count for tree in trees])
        self.roots = starts[:-1].astype(np.int32)
        leaf = np.concatenate([tree.children_left < 0 for tree in trees])
        own = np.arange(starts[-1], dtype=np.int32)
        offsets = np.repeat(self.roots, [tree.node_count for tree in trees])
        self.children = np.empty(2 * len(own), dtype=np.int32)
        for side, name in enumerate(("children_left", "children_right")):
            child = np.concatenate([getattr(tree, name) for tree in trees]) + offsets
            self.children[side::2] = np.where(leaf, own, child)
        self.features = np.where(leaf, 0, np.concatenate([tree.feature for tree in trees]))
        self.features = self.features.astype(np.int32)
        self.thresholds = _round_down_to_float32(np.concatenate([tree.threshold for tree in trees]))
        self.values = np.concatenate([tree.value[:, 0, : self.n_classes] for tree in trees])

    def as_float32(self, matrix: np.ndarray) -> np.ndarray:
        """The encoded matrix as the walks read it; ValueError if it has not the forest's
        number of features (the walks index it unchecked)."""
        data = np.ascontiguousarray(matrix, dtype=np.float32)
        if data.ndim != 2 or data.shape[1] != self.n_features:
            raise ValueError(f"{data.shape} matrix for a forest of {self.n_features} features")
        return data


class NumpyForest:
    """A forest's predict_proba walked with numpy (see the module's doc)."""

    def __init__(self, forest):
        self.flat = FlatForest(forest)

    def __call__(self, matrix: np.ndarray) -> np.ndarray:
        data = self.flat.as_float32(matrix)
        total = np.zeros((len(data), self.flat.n_classes))
        for start in range(0, len(data), BLOCK_ROWS):
            total[start : start + BLOCK_ROWS] = self._sums(data[start : start + BLOCK_ROWS])
        return total / len(self.flat.roots)

    def _sums(self, data: np.ndarray) -> np.ndarray:
        """Each row's leaf values summed over the trees, in tree order."""
        flat = self.flat
        rows = np.arange(len(data))[:, None]
        nodes = np.broadcast_to(flat.roots, (len(data), len(flat.roots)))
        while True:
            right = data[rows, flat.features[nodes]] > flat.thresholds[nodes]
            moved = flat.children[2 * nodes + right]
            if np.array_equal(moved, nodes):
                break
            nodes = moved
        # cumsum adds in order, as sklearn does tree after tree (a plain sum may not).
        return np.cumsum(flat.values[nodes], axis=1)[:, -1]


def _round_down_to_float32(thresholds: np.ndarray) -> np.ndarray:
    """The largest float32 at or below each threshold: for a float32 feature x,
    x <= t exactly when x <= this."""
    rounded = thresholds.astype(np.float32)
    above = rounded.astype(np.float64) > thresholds
    rounded[above] = np.nextafter(rounded[above], np.float32(-np.inf))
    return rounded
