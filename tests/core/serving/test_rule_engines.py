"""core.serving.rule_engines: the rule models on columns give the pipeline's probabilities
exactly, and a champion serves with the engine only when it does."""

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.data.schema import LABELS
from core.modeling.models import build_pipeline
from core.serving import rule_engines
from core.serving.champion import Champion
from core.serving.records import fields_frame, frame_columns
from core.tracking.champion_store import Manifest
from core.tracking.model_format import load_model
from tests.support.champion import labelled, probabilities
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
    legacy = LEGACY / "sector-scale" / "v1" / "model.pkl"
    pipeline = load_model(legacy.read_bytes(), "v1/model.pkl")
    frame = fields_frame(rule_engines.check_records(pipeline, 300))
    name, engine = rule_engines.rule_engine(pipeline)
    assert name == "numpy-sector-scale"
    assert np.array_equal(engine(frame_columns(frame)), pipeline.predict_proba(frame))
