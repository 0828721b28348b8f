"""API test fixtures: two champions to publish, records to send (helpers: tests.support.api)."""

import pytest
from sklearn.pipeline import Pipeline

from tests.support.champion import sample_records, train_pipeline


@pytest.fixture(scope="session")
def pipelines() -> dict[str, Pipeline]:
    """Two different champions: what a first and a second promotion publish."""
    return {"1": train_pipeline(seed=0), "2": train_pipeline(seed=1, n_estimators=20)}


@pytest.fixture(scope="session")
def records() -> list[dict]:
    return sample_records(seed=5)
