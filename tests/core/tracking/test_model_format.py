"""core.tracking.model_format: a model file loads only as skops with this project's trusted types,
every tree checked (core.tracking.tree_checks), as one of this project's pipelines; a legacy
pickle is rebuilt from trusted names only (core.tracking.legacy_pickle) and never runs code."""

import math
import os
import pickle

import numpy as np
import pandas as pd
import pytest
import skops.io
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from core.errors import Conflict
from core.modeling.features import RecordEncoder
from core.modeling.models import FAMILIES, NEEDS_CONSUMPTION, build_pipeline
from core.serving.light_reader import read_light
from core.tracking.model_format import TRUSTED_TYPES, load_model
from tests.support.champion import labelled
from tests.support.crafted import PREDICTOR, TREE, edit_first_array, set_first_value, trojan_pickle
from tooling.synth import generate_records

# A few trees and rounds: what is checked is the file, not the model's quality.
SMALL = {"rf": {"classify__n_estimators": 3}, "hgb": {"classify__max_iter": 3}}
SMALL["scale"] = SMALL["rf"]


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, pd.Series]:
    return labelled(generate_records(1200, seed=4))


@pytest.fixture(scope="module")
def models(data) -> dict[str, Pipeline]:
    """Every family fitted, on the feature set it trains on by default."""
    X, y = data
    return {
        family: build_pipeline(family, feature_set).set_params(**SMALL.get(family, {})).fit(X, y)
        for family in FAMILIES
        for feature_set in ["with-consumption" if family in NEEDS_CONSUMPTION else "building-only"]
    }


@pytest.fixture(scope="module")
def forest_file(models) -> bytes:
    return skops.io.dumps(models["rf"])


def test_every_family_holds_only_trusted_types_and_loads_as_it_was(models, data):
    X, _ = data
    for family, pipeline in models.items():
        saved = skops.io.dumps(pipeline)
        assert set(skops.io.get_untrusted_types(data=saved)) <= set(TRUSTED_TYPES), family
        loaded = load_model(saved, "v1/model.skops")
        assert np.array_equal(loaded.predict_proba(X), pipeline.predict_proba(X)), family


def test_a_type_outside_the_list_is_refused_and_named(models):
    ours = models["logreg"]
    hooked = Pipeline(
        [
            ours.steps[0],
            ("hook", FunctionTransformer(os.system)),  # would run a command at predict time
            ours.steps[1],
        ]
    )
    with pytest.raises(Conflict, match=r"v2/model\.skops holds types .* not trust: posix\.system"):
        load_model(skops.io.dumps(hooked), "v2/model.skops")


def test_what_is_not_a_skops_file_is_refused(models):
    with pytest.raises(Conflict, match=r"model\.skops is not a skops file"):
        load_model(pickle.dumps(models["rf"]), "v1/model.skops")
    with pytest.raises(Conflict, match=r"model\.onnx is not a skops model file"):
        load_model(b"anything", "v1/model.onnx")


def test_a_model_that_is_not_one_of_ours_is_refused(data):
    X, y = data
    numbers = X[["surface_utile"]].fillna(0)
    plain = LogisticRegression(max_iter=100).fit(numbers, y)  # issue 24 #9's foreign model
    with pytest.raises(Conflict, match=r"holds a sklearn\.linear_model.*LogisticRegression, not"):
        load_model(skops.io.dumps(plain), "v5/model.skops")
    scaled = Pipeline([("scale", StandardScaler()), ("classify", plain)]).fit(numbers, y)
    with pytest.raises(Conflict, match=r"does not start with \('encode'"):
        load_model(skops.io.dumps(scaled), "v5/model.skops")


def _child_out_of_range(nodes):
    nodes["left_child"][0] = 10**6


def _child_back_to_itself(nodes):  # a walk that never ends
    nodes["left_child"][0] = 0


def _feature_out_of_range(nodes):
    nodes["feature"][0] = 10**6


def _threshold_not_a_number(nodes):
    nodes["threshold"][0] = math.nan


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (_child_out_of_range, "a left child points outside the tree"),
        (_child_back_to_itself, "a left child points outside the tree or back up it"),
        (_feature_out_of_range, "a split reads a feature outside the"),
        (_threshold_not_a_number, "a split has no finite threshold"),
    ],
)
def test_a_crafted_tree_is_refused_before_it_predicts(forest_file, edit, reason):
    crafted = edit_first_array(forest_file, TREE, "nodes", edit)
    with pytest.raises(Conflict, match=f"v3/model.skops refused: a tree is unsafe: {reason}"):
        load_model(crafted, "v3/model.skops")
    assert read_light(crafted) is None  # the quick start does not serve it either
    assert read_light(forest_file) is not None


def test_a_tree_claiming_more_nodes_or_features_than_it_has_is_not_walked(
    forest_file, models, data
):
    X, _ = data
    count = models["rf"].named_steps["classify"].estimators_[0].tree_.node_count
    crafted = set_first_value(forest_file, TREE, "node_count", count + 1000)
    assert read_light(crafted) is None  # the numba engine would walk the extra nodes
    loaded = load_model(crafted, "v3/model.skops")  # sklearn cuts the count to what it holds
    assert loaded.named_steps["classify"].estimators_[0].tree_.node_count == count
    assert np.array_equal(loaded.predict_proba(X), models["rf"].predict_proba(X))
    wide = set_first_value(forest_file, "DecisionTreeClassifier", "n_features_in_", 10**6)
    with pytest.raises(Conflict, match="a tree of a forest takes another number of features"):
        load_model(wide, "v3/model.skops")
    assert read_light(wide) is None


def test_a_crafted_boosted_tree_is_refused(models):
    saved = skops.io.dumps(models["hgb"])

    def far_feature(nodes):
        nodes["feature_idx"][nodes["is_leaf"] == 0] = 10**6

    crafted = edit_first_array(saved, PREDICTOR, "nodes", far_feature)
    with pytest.raises(Conflict, match="a boosted tree is unsafe: a split reads a feature"):
        load_model(crafted, "v4/model.skops")

    def categorical(nodes):
        nodes["is_categorical"][0] = 1

    crafted = edit_first_array(saved, PREDICTOR, "nodes", categorical)
    with pytest.raises(Conflict, match="splits on categories"):
        load_model(crafted, "v4/model.skops")


def test_a_legacy_pickle_that_would_run_code_is_refused_and_runs_nothing(models, tmp_path):
    marker = tmp_path / "ran"

    class System:  # unpickling this runs a shell command
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    with pytest.raises(Conflict, match=r"v1/model\.pkl refused: posix\.system is not a trusted"):
        load_model(pickle.dumps(System()), "v1/model.pkl")
    trojan = trojan_pickle(models["rules"], marker)
    with pytest.raises(Conflict, match=r"builtins\.eval is not a trusted type"):
        load_model(trojan, "v1/model.pkl")
    assert not marker.exists()
    # What the refusal prevents: a plain unpickling runs the code and returns a working model.
    assert pickle.loads(trojan).predict([{}])[0] in "ABCDEFG"
    assert marker.exists()


def test_a_legacy_pickle_of_our_classes_loads_and_names_what_it_may_not_use(models, data):
    X, _ = data
    for family in ("sector-scale", "hgb", "logreg", "scale"):
        legacy = load_model(pickle.dumps(models[family]), "v1/model.pkl")
        assert np.array_equal(legacy.predict_proba(X), models[family].predict_proba(X))
    crafted = pickle.dumps(Pipeline([("encode", RecordEncoder()), ("classify", np.load)]))
    with pytest.raises(Conflict, match=r"\.load is not a trusted type"):
        load_model(crafted, "v1/model.pkl")
