"""Reading a forest pipeline without sklearn, for the API's quick start.

Importing sklearn (with scipy and pandas) takes ~1.2 s, most of a server's cold start. A
`RecordEncoder` + RandomForest/ExtraTrees pipeline is read here by a restricted unpickler
that knows only numpy's array reconstruction and the classes below: the encoder's state
and the trees' arrays go straight into the numba engine (`core.serving.engines.ForestEngine`).
Anything else in the pickle ends the light read; the normal load takes over.
"""

import io
import pickle

from core.modeling.encoding import FieldEncoding


class _Attributes:
    """An unpickled object's attributes and nothing else: what a light read makes of the
    sklearn estimators it knows."""

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)


class _TreeArrays:
    """An sklearn `Tree` as the arrays `core.serving.engines.ForestEngine` reads."""

    def __init__(self, n_features, n_classes, n_outputs):
        self.n_outputs = n_outputs

    def __setstate__(self, state: dict) -> None:
        nodes = state["nodes"]
        self.node_count = state["node_count"]
        self.children_left, self.children_right = nodes["left_child"], nodes["right_child"]
        self.feature, self.threshold = nodes["feature"], nodes["threshold"]
        self.value = state["values"]


class LightForest:
    """A forest read without sklearn: its classes, and the numba engine as predict_proba."""

    def __init__(self, forest):
        from core.serving.engines import ForestEngine

        self.classes_ = forest.classes_
        self.predict_proba = ForestEngine(forest)


_LIGHT_CLASSES = {
    ("sklearn.pipeline", "Pipeline"): _Attributes,
    ("sklearn.ensemble._forest", "RandomForestClassifier"): _Attributes,
    ("sklearn.ensemble._forest", "ExtraTreesClassifier"): _Attributes,
    ("sklearn.tree._classes", "DecisionTreeClassifier"): _Attributes,
    ("sklearn.tree._classes", "ExtraTreeClassifier"): _Attributes,
    ("sklearn.tree._tree", "Tree"): _TreeArrays,
    ("core.modeling.features", "RecordEncoder"): FieldEncoding,
}


# What rebuilds numpy arrays and scalars (numpy 2's module names and numpy 1's).
_NUMPY_GLOBALS = {
    (module, name)
    for module in ("numpy._core.multiarray", "numpy.core.multiarray")
    for name in ("_reconstruct", "scalar")
} | {("numpy", "ndarray"), ("numpy", "dtype"), ("copyreg", "_reconstructor")}


class _LightUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays and `_LIGHT_CLASSES` only: anything else ends the light read."""

    def find_class(self, module: str, name: str):
        if (module, name) in _LIGHT_CLASSES:
            return _LIGHT_CLASSES[module, name]
        if (module, name) in _NUMPY_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"{module}.{name} is not read without sklearn")


def read_light(data: bytes) -> _Attributes | None:
    """The pickled pipeline, if it is `RecordEncoder` then a single-output forest, as
    (encoder's state, numba engine) without importing sklearn; else None."""
    try:
        pipeline = _LightUnpickler(io.BytesIO(data)).load()
        (_, encoder), (_, forest) = pipeline.steps
    except Exception:  # not a pipeline this reads: the normal load will
        return None
    trees = getattr(forest, "estimators_", [])
    if not isinstance(encoder, FieldEncoding) or getattr(forest, "n_outputs_", 0) != 1:
        return None
    if not trees or not all(isinstance(getattr(t, "tree_", None), _TreeArrays) for t in trees):
        return None
    pipeline.steps = [("encode", encoder), ("classify", LightForest(forest))]
    return pipeline
