"""core.serving.rule_engines: the rule models on columns give the pipeline's probabilities
exactly, and a champion serves with the engine only when it does; the quick start
(core.serving.light_reader) serves a rule model with it before sklearn is imported."""

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import skops.io

from core.data.schema import LABELS
from core.modeling.models import build_pipeline
from core.serving import rule_engines
from core.serving.champion import Champion, serving_champions
from core.serving.light_reader import read_light
from core.serving.records import fields_frame, frame_columns
from core.storage import Store
from core.tracking.champion_store import Manifest, read_manifest
from core.tracking.model_format import load_model
from tests.support.champion import labelled, probabilities, publish_champion
from tests.support.cli import python_json
from tooling.synth import generate_records

LEGACY = Path(__file__).resolve().parents[2] / "fixtures" / "legacy_champions"
MODELS = [
    ("sector-scale", "with-consumption"),
    ("rules", "with-consumption"),
    ("rules", "building-only"),
]


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, pd.Series]:
    return labelled(generate_records(1500, seed=3))


def fitted(data, family: str, feature_set: str):
    X, y = data
    return build_pipeline(family, feature_set).fit(X, y)


def records(pipeline, X: pd.DataFrame) -> list[dict]:
    """The check records, then generated buildings (None where a field is missing)."""
    buildings = X.head(300).astype(object).where(X.head(300).notna(), None)
    return rule_engines.check_records(pipeline, 120) + buildings.to_dict("records")


@pytest.mark.parametrize(("family", "feature_set"), MODELS)
def test_the_engine_gives_the_pipelines_probabilities_bit_for_bit(data, family, feature_set):
    pipeline = fitted(data, family, feature_set)
    frame = fields_frame(records(pipeline, data[0]))
    name, engine = rule_engines.rule_engine(pipeline)
    assert name.startswith("numpy-")
    assert np.array_equal(engine(frame_columns(frame)), pipeline.predict_proba(frame))


def test_a_rule_champion_is_served_by_its_engine_one_record_as_in_a_batch(data):
    pipeline = fitted(data, "sector-scale", "with-consumption")
    champion = Champion(
        Manifest(model_version="1", model_file="v1/model.skops", files={}), pipeline
    )
    champion.compile()
    assert champion.engines == {"small": "numpy-scale-mixture", "large": "numpy-scale-mixture"}
    given = records(pipeline, data[0])
    expected = pipeline.predict_proba(fields_frame(given))
    together = champion.predict(given)
    one_by_one = [champion.predict([record])[0] for record in given]
    for results in (together, one_by_one):
        assert np.array_equal(probabilities(results), expected)
        assert [r["label"] for r in results] == [LABELS[i] for i in expected.argmax(axis=1)]


def test_an_engine_that_disagrees_is_not_served(data, monkeypatch, caplog):
    pipeline = fitted(data, "sector-scale", "with-consumption")
    name, engine = rule_engines.rule_engine(pipeline)
    monkeypatch.setattr(
        rule_engines, "rule_engine", lambda _: (name, lambda columns: engine(columns)[:, ::-1])
    )
    champion = Champion(
        Manifest(model_version="1", model_file="v1/model.skops", files={}), pipeline
    )
    with caplog.at_level(logging.WARNING):
        champion.compile()
    assert champion.engines == {"small": "sklearn", "large": "sklearn"}
    assert "numpy-scale-mixture engine differs from sklearn" in caplog.text
    given = records(pipeline, data[0])[:50]
    expected = pipeline.predict_proba(fields_frame(given))
    assert np.array_equal(probabilities(champion.predict(given)), expected)


def test_a_champion_promoted_before_the_scale_mixture_keeps_its_engine():
    """SectorScaleClassifier champions (tests/fixtures/legacy_champions) still serve in numpy."""
    pipeline = legacy_pipeline()
    frame = fields_frame(rule_engines.check_records(pipeline, 300))
    name, engine = rule_engines.rule_engine(pipeline)
    assert name == "numpy-sector-scale"
    assert np.array_equal(engine(frame_columns(frame)), pipeline.predict_proba(frame))


def legacy_pipeline():
    return load_model((LEGACY / "sector-scale" / "v1" / "model.pkl").read_bytes(), "v1/model.pkl")


@pytest.mark.parametrize(("family", "feature_set"), [*MODELS, ("legacy", "with-consumption")])
def test_a_quick_start_serves_a_rule_model_as_the_checked_champion_does(
    settings, data, family, feature_set
):
    """The quick champion reads the rule model's state from its skops file (no sklearn) and
    answers exactly as the champion loaded in full and checked: labels, probabilities,
    errors, warnings, and `predict_proba` of a frame (drift asks for it)."""
    pipeline = legacy_pipeline() if family == "legacy" else fitted(data, family, feature_set)
    publish_champion(settings, pipeline, 1)
    store = Store(settings)
    quick, checked = serving_champions(read_manifest(store), store)
    name = rule_engines.rule_engine(pipeline)[0]
    assert quick.light and quick.engines["small"] == f"{name}, not checked yet"
    assert not checked.light and checked.engines == {"small": name, "large": name}
    given = records(pipeline, data[0])
    given += [{"secteur_activite": 3, "conso_kwhep_m2_an": "x"}, {"surface": 1}]
    assert quick.predict(given) == checked.predict(given)
    frame = fields_frame(given[:-2])
    assert np.array_equal(quick.predict_proba(frame), checked.predict_proba(frame))
    assert np.array_equal(quick.predict_proba(frame), pipeline.predict_proba(frame))


def test_the_quick_start_of_the_default_family_imports_neither_sklearn_nor_pandas(settings, data):
    """Nor skops, scipy or rich (api.logs): a cold start's imports."""
    pipeline = fitted(data, "sector-scale", "with-consumption")
    publish_champion(settings, pipeline, 1)
    code = (
        "import json, sys; import api.main; from core.config import Settings; "
        "from core.serving.champion import serving_champions; "
        "from core.tracking.champion_store import read_manifest; "
        "from core.storage import Store; "
        "HEAVY = {'sklearn', 'pandas', 'scipy', 'skops', 'rich'}; "
        f"store = Store(Settings(_env_file=None, home={str(settings.home)!r})); "
        "champion = next(serving_champions(read_manifest(store), store)); "
        "results = champion.predict(json.load(sys.stdin)); "
        "print(json.dumps({'light': champion.light, 'results': results, "
        "'heavy': sorted(HEAVY & set(sys.modules))}))"
    )
    given = records(pipeline, data[0])
    answer = python_json(code, given)
    assert answer["light"] and answer["heavy"] == []
    expected = pipeline.predict_proba(fields_frame(given))
    assert np.array_equal(probabilities(answer["results"]), expected)
    assert [r["label"] for r in answer["results"]] == list(pipeline.predict(fields_frame(given)))


def test_the_light_read_takes_only_rule_state_its_engine_can_answer_with(data):
    pipeline = fitted(data, "sector-scale", "with-consumption")
    assert read_light(skops.io.dumps(pipeline)) is not None
    classifier = pipeline.steps[1][1]
    classifier.unseen_shares_ = {}  # a sector never seen could not be answered
    assert read_light(skops.io.dumps(pipeline)) is None
    logreg = build_pipeline("logreg", "with-consumption").fit(*data)
    assert read_light(skops.io.dumps(logreg)) is None  # not a rule model: the full load reads it
