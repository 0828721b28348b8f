"""Fixtures of the serving tests (test_champion, test_batch): a small forest published as
the champion of the test's own store, and records to send it."""

import pytest
from sklearn.pipeline import Pipeline

from core.serving.champion import Champion, load_champion
from tests.support.champion import publish_champion, sample_records, train_pipeline


@pytest.fixture(scope="module")
def pipeline() -> Pipeline:
    return train_pipeline(n_estimators=40)


@pytest.fixture(scope="module")
def records() -> list[dict]:
    return sample_records(seed=3)


@pytest.fixture
def champion(settings, pipeline) -> Champion:
    publish_champion(settings, pipeline, 1)
    return load_champion(settings)
