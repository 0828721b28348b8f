"""Reading a forest or rule pipeline's skops file without sklearn, for the API's quick start.

Importing sklearn (with scipy and pandas) takes ~1.2 s, and skops imports it: most of a
server's cold start. A skops file is a zip of `schema.json` (a tree of nodes: objects,
dicts, lists, JSON values, arrays) and `.npy` arrays. For a `RecordEncoder` +
RandomForest/ExtraTrees pipeline this module reads that tree with `json` and the arrays with
`numpy.load(allow_pickle=False)`, builds only the classes below (the encoder's state, the
estimators' attributes, the trees' arrays), checks every tree as a full load does
(`core.tracking.tree_checks`) and hands the arrays to a numpy walk of the trees
(`core.serving.forest_arrays.NumpyForest`: nothing more to import). A `RecordFrame` + rule
model pipeline (`rules`, `sector-scale`) is read the same way into the rule models' state
(`core.modeling.rule_state`), tried on check records by its numpy engine
(`core.serving.rule_engines`), which serves it. Any other node or class ends the light
read (None): the full load (`core.tracking.model_format`) then reads the file, or refuses it.
"""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import numpy as np

from core.data.schema import LABELS
from core.modeling.encoding import FieldEncoding
from core.modeling.rule_state import RuleState, ScaleMixtureState, SectorScaleState
from core.serving.forest_arrays import NumpyForest
from core.serving.records import columns_of
from core.serving.rule_engines import check_records, rule_engine
from core.tracking.tree_checks import tree_arrays_problem


class _Attributes:
    """An object's attributes and nothing else: what a light read makes of the sklearn
    estimators it knows."""

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)


class LightPipeline(_Attributes):
    """An sklearn `Pipeline` read without sklearn: its `steps`, and its classifier's classes."""

    steps: list

    @property
    def classes_(self):
        return self.steps[-1][1].classes_


class _TreeArrays:
    """An sklearn `Tree` as the arrays `core.serving.forest_arrays.FlatForest` reads."""

    def __init__(self, n_features, n_classes, n_outputs):
        self.n_features, self.n_outputs = n_features, n_outputs

    def __setstate__(self, state: dict) -> None:
        nodes = state["nodes"]
        self.node_count = state["node_count"]
        self.children_left, self.children_right = nodes["left_child"], nodes["right_child"]
        self.feature, self.threshold = nodes["feature"], nodes["threshold"]
        self.value = state["values"]


class LightForest:
    """A forest read without sklearn: its classes, and its trees walked by numpy as
    predict_proba (numba, ~1 s to import and load its kernel, comes with the checked load)."""

    def __init__(self, forest):
        self.classes_ = forest.classes_
        self.predict_proba = NumpyForest(forest)


_LIGHT_CLASSES: dict[tuple[str, str], type] = {
    ("sklearn.pipeline", "Pipeline"): LightPipeline,
    ("sklearn.ensemble._forest", "RandomForestClassifier"): _Attributes,
    ("sklearn.ensemble._forest", "ExtraTreesClassifier"): _Attributes,
    ("sklearn.tree._classes", "DecisionTreeClassifier"): _Attributes,
    ("sklearn.tree._classes", "ExtraTreeClassifier"): _Attributes,
    ("core.modeling.features", "RecordEncoder"): FieldEncoding,
    ("core.modeling.models", "RecordFrame"): _Attributes,
    ("core.modeling.rules", "RuleClassifier"): RuleState,
    ("core.modeling.rules", "SectorScaleClassifier"): SectorScaleState,
    ("core.modeling.rules", "ScaleMixtureClassifier"): ScaleMixtureState,
}
CHECK_ROWS = 100  # check records a rule model's engine must answer before it serves
_KEY_TYPES = {"str": str, "int": int, "float": float}


def _key_type(node: dict) -> type:
    """The type of a dict's key, as skops names it (builtins only)."""
    if node["__module__"] != "builtins":
        raise TypeError(f"{node['__module__']}.{node['__class__']} keys are not read here")
    return _KEY_TYPES[node["__class__"]]


SMALL_NPY_BYTES = 1024  # arrays up to this size are read once per distinct content


class _SkopsReader:
    """Builds the objects of a skops schema from the node kinds a forest pipeline uses."""

    def __init__(self, archive: zipfile.ZipFile):
        self.archive = archive
        self.memo: dict[int, Any] = {}  # skops writes an object once, then refers to its id
        self.small_arrays: dict[bytes, np.ndarray] = {}  # by their `.npy` bytes

    def read(self, node: dict) -> Any:
        known = node.get("__id__")
        if known in self.memo:
            return self.memo[known]
        value = getattr(self, f"_{node['__loader__']}")(node)
        if known is not None:
            self.memo[known] = value
        return value

    def _JsonNode(self, node: dict) -> Any:
        return json.loads(node["content"])

    def _ListNode(self, node: dict) -> list:
        return [self.read(item) for item in node["content"]]

    def _TupleNode(self, node: dict) -> tuple:
        return tuple(self.read(item) for item in node["content"])

    def _DictNode(self, node: dict) -> dict:
        kinds = [_key_type(kind) for kind in node["key_types"]["content"]]
        items = node["content"].items()
        return {
            kind(key): self.read(value) for kind, (key, value) in zip(kinds, items, strict=True)
        }

    def _CachedNode(self, node: dict) -> Any:
        raise KeyError(f"unknown object id {node.get('__id__')}")  # read() found none

    def _NdArrayNode(self, node: dict) -> Any:
        if node["type"] == "json":  # an object array, its items as nodes
            items = [self.read(item) for item in node["content"]]
            array = np.empty(len(items), dtype=object)
            array[:] = items
            return array.reshape(self.read(node["shape"]))
        array = self._array(node["file"])
        if node["__class__"] == "ndarray":
            return array
        scalar = getattr(np, node["__class__"], None)  # a numpy scalar type (np.int64...) only
        if node["__module__"] != "numpy" or not (
            isinstance(scalar, type) and issubclass(scalar, np.generic)
        ):
            raise TypeError(f"numpy.{node['__class__']} is not read without sklearn")
        return scalar(array)

    def _array(self, name: str) -> np.ndarray:
        """The archive's `.npy` entry `name`. A small one is parsed once per content, each
        caller getting its own copy: a forest repeats every tree's classes and counts (900 of
        a 300-tree forest's 1,500 arrays), and numpy's header parsing is most of a read."""
        with self.archive.open(name) as file:
            data = file.read()
        if len(data) > SMALL_NPY_BYTES:
            return np.load(io.BytesIO(data), allow_pickle=False)
        if data not in self.small_arrays:
            self.small_arrays[data] = np.load(io.BytesIO(data), allow_pickle=False)
        return self.small_arrays[data].copy()

    def _ObjectNode(self, node: dict) -> Any:
        cls: Any = _LIGHT_CLASSES[node["__module__"], node["__class__"]]
        instance = cls.__new__(cls)
        attributes = self.read(node["content"]) if node.get("content") else {}
        instance.__dict__.update(attributes)
        return instance

    def _TreeNode(self, node: dict) -> _TreeArrays:
        tree = _TreeArrays(*self.read(node["__reduce__"]["args"]))
        tree.__setstate__(self.read(node["content"]))
        return tree


def read_light(data: bytes) -> LightPipeline | None:
    """The skops pipeline in `data`, without importing sklearn, pandas or numba, if it is
    `RecordEncoder` then a single-output forest whose trees pass the checks (the forest
    walked by numpy), or `RecordFrame` then a rule model whose numpy engine answers check
    records; else None."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            pipeline = _SkopsReader(archive).read(json.loads(archive.read("schema.json")))
        (_, head), (_, classifier) = pipeline.steps
        if isinstance(head, FieldEncoding) and not _forest_problem(classifier):
            pipeline.steps = [("encode", head), ("classify", LightForest(classifier))]
            return pipeline
        if not isinstance(head, FieldEncoding) and _rules_answer(pipeline):
            return pipeline
    except Exception:  # not a pipeline this reads: the full load will (or will refuse it)
        return None
    return None


def _rules_answer(pipeline: LightPipeline) -> bool:
    """Whether the pipeline is a rule model whose numpy engine answers check records with
    probabilities of the labels A..G."""
    found = rule_engine(pipeline)
    if found is None or [str(c) for c in pipeline.classes_] != list(LABELS):
        return False
    columns, floats, *_ = columns_of(check_records(pipeline, CHECK_ROWS))
    proba = found[1]({**columns, **floats})
    return proba.shape == (CHECK_ROWS, len(LABELS)) and bool(np.isfinite(proba).all())


def _forest_problem(forest: Any) -> str | None:
    """Why the forest is not one the engines may walk (see `tree_checks`)."""
    trees = getattr(forest, "estimators_", [])
    width = getattr(forest, "n_features_in_", None)
    if getattr(forest, "n_outputs_", 0) != 1 or not trees or not isinstance(width, int):
        return "not a single-output forest"
    for estimator in trees:
        tree = getattr(estimator, "tree_", None)
        if not isinstance(tree, _TreeArrays) or width != tree.n_features:
            return "a tree of another kind or width"
        if getattr(estimator, "n_features_in_", None) != width:  # as the full load checks
            return "a tree of a forest takes another number of features"
        if not 0 < tree.node_count == len(tree.children_left) == len(tree.value):
            return "a tree counts other nodes than it holds"
        problem = tree_arrays_problem(
            tree.children_left, tree.children_right, tree.feature, tree.threshold, width
        )
        if problem:
            return problem
    return None
