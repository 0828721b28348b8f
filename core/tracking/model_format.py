"""The champion's file format: skops, loading only the types this project trusts.

A model is saved by `mlflow.sklearn.log_model(..., serialization_format="skops",
skops_trusted_types=list(TRUSTED_TYPES))` (core.modeling.train) as `model.skops`: a zip of a
JSON schema and numpy arrays, from which skops rebuilds only the types it is told to trust.
Every load of a champion (the API, the workbench, `dpe predict`, drift, the lifecycle's
evaluate step, promotion and sync) goes through `load_model`, which passes skops
`TRUSTED_TYPES` from this module, never the `skops_trusted_types` an MLmodel file declares
(whoever can write to MLflow or to the store writes that file), then refuses a model whose
trees fail `core.tracking.tree_checks` or that is not one of this project's pipelines.

Adding a class to a model (a new family, a new wrapper): add its full name to
`TRUSTED_TYPES` below, one line, and nowhere else. Training fails until it is there (MLflow
test-loads the model with this list when it logs it), naming the missing type.

A `model.pkl` is a champion promoted before skops (a cloudpickle): it is read, never
unpickled freely, by `core.tracking.legacy_pickle` (its classes by name, old module paths
mapped to the new ones, numpy's array reconstruction; anything else refused), so champions
already in a store keep serving after an upgrade, with a warning. Promotion and sync export
skops files only: a registry version whose model is a pickle is refused (retrain it).

Imports numpy only: skops (and with it sklearn) is imported when a model is loaded.
"""

from __future__ import annotations

import io
import zipfile
from typing import Any

from core.data.feature_sets import FEATURE_SETS
from core.data.schema import LABELS
from core.errors import Conflict
from core.tracking.tree_checks import trees_problem

# Every class of ours, and every sklearn internal skops does not trust by default, that a
# model of this project may hold. One line each; the label sets' classes go here too.
TRUSTED_TYPES: tuple[str, ...] = (
    "core.modeling.features.RecordEncoder",
    "core.modeling.models.RecordFrame",
    "core.modeling.models.ScaleClassifier",
    "core.modeling.rules.RuleClassifier",
    "core.modeling.rules.SectorScaleClassifier",
    # Trees hold child and feature indices sklearn follows unchecked: `tree_checks` checks
    # every tree of a loaded model before it predicts anything.
    "sklearn.tree._tree.Tree",  # rf, scale
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",  # hgb
)

SKOPS_FILE = "model.skops"  # what MLflow names a skops model in its directory
PICKLE_FILE = "model.pkl"  # a champion promoted before skops
# The first step of every model of this project (core.modeling.models.build_pipeline).
HEADS = ("core.modeling.features.RecordEncoder", "core.modeling.models.RecordFrame")


def type_name(obj: object) -> str:
    """`module.Class` of an object, as skops and `TRUSTED_TYPES` name it."""
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def load_model(data: bytes, name: str) -> Any:
    """The model in `data` (the file `name`: `.skops`, or a legacy `.pkl`), checked: only
    trusted types, every tree's arrays in range, a pipeline of this project's. Conflict,
    naming what was refused, for anything else; no code from the file ever runs."""
    if name.endswith(".skops"):
        model = _skops_model(data, name)
    elif name.endswith(".pkl"):
        from core.tracking.legacy_pickle import read_legacy

        model = read_legacy(data, name, TRUSTED_TYPES)
    else:
        raise Conflict(f"{name} is not a skops model file ({SKOPS_FILE}): refusing it")
    problem = model_problem(model) or trees_problem(model)
    if problem:
        raise Conflict(f"{name} refused: {problem}")
    return model


def _skops_model(data: bytes, name: str) -> Any:
    import skops.io
    from skops.io.exceptions import UntrustedTypesFoundException

    if not zipfile.is_zipfile(io.BytesIO(data)):
        raise Conflict(f"{name} is not a skops file (a zip of a schema and arrays): refusing it")
    try:
        return skops.io.loads(data, trusted=list(TRUSTED_TYPES))
    except UntrustedTypesFoundException:
        found = skops.io.get_untrusted_types(data=data)  # ours included: skops knows no list
        untrusted = ", ".join(name for name in found if name not in TRUSTED_TYPES)
        raise Conflict(f"{name} holds types this project does not trust: {untrusted}") from None
    except Exception as error:  # whatever else a malformed file raises means the same
        raise Conflict(f"{name} could not be read as a skops model: {error}") from None


def model_problem(model: Any) -> str | None:
    """Why `model` is not a model of this project (None when it is): an sklearn Pipeline
    whose first step is ("encode", RecordEncoder or RecordFrame) of one of our feature sets,
    with predict_proba, that predicts labels among A–G. By type name: this layer imports
    no model code."""
    if type_name(model) != "sklearn.pipeline.Pipeline":
        return f"it holds a {type_name(model)}, not a pipeline of this project's"
    steps = getattr(model, "steps", None)
    if not isinstance(steps, list) or not steps or not isinstance(steps[0], tuple):
        return "its pipeline has no steps"
    first, head = steps[0][0], steps[0][1] if len(steps[0]) == 2 else None
    if first != "encode" or type_name(head) not in HEADS:
        return f"its pipeline does not start with ('encode', {' or '.join(HEADS)})"
    if getattr(head, "feature_set", None) not in FEATURE_SETS:
        return f"its encoder reads no feature set of this project ({', '.join(FEATURE_SETS)})"
    if not hasattr(model, "predict_proba"):
        return "its pipeline gives no probabilities"
    try:
        classes = [str(label) for label in model.classes_]
    except Exception:  # an unfitted or malformed final step
        return "its pipeline has no classes"
    if not classes or not set(classes) <= set(LABELS):
        return f"it predicts {classes}, not labels A–G"
    return None
