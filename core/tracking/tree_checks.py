"""The arrays of a loaded model's trees, checked before it predicts anything.

sklearn (and our numba forest engine) follow a tree's child and feature indices without
bounds checks, for speed: a file whose `nodes` point outside the tree, or at a feature the
input does not have, or that loop back, would read memory it does not own, crash the process
or never end, at the first prediction. skops therefore does not trust `sklearn.tree._tree.Tree`
nor HistGradientBoosting's `TreePredictor` by default; we trust them (`model_format`) because
every tree is checked here first:

- a node is a leaf (left child -1, right child -1) or has both children after it and inside
  the tree (so a walk always ends at a leaf);
- a split reads a feature in [0, n_features) of its estimator, which sklearn checks the
  input against; every tree of a forest has its forest's n_features;
- a split's threshold is finite (HistGradientBoosting: not NaN; its +inf is the split that
  sends missing values right); the values have one row per node;
- HistGradientBoosting splits on categories are refused: no family of ours uses them.

numpy only: the API's quick start (`core.serving.light_reader`) checks a forest's arrays
with `tree_arrays_problem` before sklearn is imported.
"""

from __future__ import annotations

from typing import Any

import numpy as np

TREE = "sklearn.tree._tree.Tree"
PREDICTOR = "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"


def tree_arrays_problem(
    left: np.ndarray,
    right: np.ndarray,
    feature: np.ndarray,
    threshold: np.ndarray,
    n_features: int,
    finite: bool = True,
) -> str | None:
    """Why these node arrays do not make a tree that is safe to walk (None when they do).
    A leaf has both children -1; a split reads `feature` against `threshold` (finite, or
    with `finite=False` only not NaN)."""
    n = len(left)
    if n == 0 or not len(right) == len(feature) == len(threshold) == n:
        return f"its node arrays have lengths {len(left)}, {len(right)}, {len(feature)}"
    index = np.arange(n)
    leaf = np.asarray(left) == -1
    if np.any(np.asarray(right)[leaf] != -1):
        return "a leaf has a right child"
    split = ~leaf
    for side, children in (("left", left), ("right", right)):
        child = np.asarray(children, dtype=np.int64)[split]
        if np.any(child <= index[split]) or np.any(child >= n):
            return f"a {side} child points outside the tree or back up it"
    used = np.asarray(feature, dtype=np.int64)[split]
    if np.any(used < 0) or np.any(used >= n_features):
        return f"a split reads a feature outside the {n_features} the model takes"
    cuts = np.asarray(threshold, dtype=np.float64)[split]
    if np.any(~np.isfinite(cuts) if finite else np.isnan(cuts)):
        return "a split has no finite threshold"
    return None


def trees_problem(model: Any) -> str | None:
    """Why the trees inside `model` are not safe to predict with (None when they are, or
    when it holds none). Every `Tree` and `TreePredictor` must belong to an estimator whose
    input width it is checked against; any other is refused."""
    objects = list(_reachable(model))
    trees = {id(obj) for obj in objects if _kind(obj) in (TREE, PREDICTOR)}
    checked: set[int] = set()
    for obj in objects:
        for tree, problem in _owned_trees(obj):
            if problem:
                return problem
            checked.add(id(tree))
    if trees - checked:
        return "it holds a tree outside any estimator"
    return None


def _kind(obj: object) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def _owned_trees(owner: Any):
    """(tree, problem) for each tree `owner` holds directly: a decision tree's `tree_`, a
    forest's estimators (each of the forest's width), a HistGradientBoosting's predictors."""
    attributes = vars(owner) if hasattr(owner, "__dict__") else {}
    width = attributes.get("n_features_in_")
    tree = attributes.get("tree_")
    if _kind(tree) == TREE:
        yield tree, _tree_problem(tree, width)
    for estimator in np.asarray(attributes.get("estimators_", []), dtype=object).ravel():
        if "tree_" in getattr(estimator, "__dict__", {}) and (
            getattr(estimator, "n_features_in_", None) != width
        ):
            yield estimator, "a tree of a forest takes another number of features"
    for predictor in _flat(attributes.get("_predictors")):
        if _kind(predictor) == PREDICTOR:
            yield predictor, _predictor_problem(predictor, width)


def _tree_problem(tree: Any, width: int | None) -> str | None:
    """A sklearn `Tree`: its node count within what it holds, its width its estimator's."""
    if not isinstance(width, int | np.integer) or tree.n_features != width:
        return "a tree takes another number of features than its estimator"
    if not 0 < tree.node_count <= tree.capacity:  # read nothing beyond what it holds
        return "a tree counts more nodes than it holds"
    problem = tree_arrays_problem(
        tree.children_left, tree.children_right, tree.feature, tree.threshold, width
    )
    if problem is None and tree.value.shape[0] != tree.node_count:
        problem = "its values do not match its nodes"
    return None if problem is None else f"a tree is unsafe: {problem}"


def _predictor_problem(predictor: Any, width: int | None) -> str | None:
    """A HistGradientBoosting `TreePredictor`: its `nodes` record array."""
    nodes = getattr(predictor, "nodes", None)
    fields = {"left", "right", "feature_idx", "num_threshold", "is_leaf", "is_categorical"}
    if not isinstance(nodes, np.ndarray) or not fields <= set(nodes.dtype.names or ()):
        return "a boosted tree has no node array"
    if not isinstance(width, int | np.integer):
        return "a boosted tree is outside a model that says how many features it takes"
    if np.any(nodes["is_categorical"][nodes["is_leaf"] == 0]):
        return "a boosted tree splits on categories, which no model of this project does"
    leaf = nodes["is_leaf"] != 0
    # Its leaves have children 0: give them the -1 of sklearn trees to check alike.
    left = np.where(leaf, -1, nodes["left"].astype(np.int64))
    right = np.where(leaf, -1, nodes["right"].astype(np.int64))
    problem = tree_arrays_problem(
        left, right, nodes["feature_idx"], nodes["num_threshold"], width, finite=False
    )
    return None if problem is None else f"a boosted tree is unsafe: {problem}"


def _flat(value: Any):
    if isinstance(value, list | tuple):
        for item in value:
            yield from _flat(item)
    elif value is not None:
        yield value


def _reachable(root: Any):
    """Every object reachable from `root` through containers and attributes, once each."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, str | bytes | int | float | bool | type(None)):
            continue
        seen.add(id(obj))
        yield obj
        if isinstance(obj, dict):
            stack.extend(obj.values())
        elif isinstance(obj, list | tuple | set | frozenset):
            stack.extend(obj)
        elif isinstance(obj, np.ndarray):
            if obj.dtype == object:
                stack.extend(obj.ravel().tolist())
        elif hasattr(obj, "__dict__"):
            stack.extend(vars(obj).values())
