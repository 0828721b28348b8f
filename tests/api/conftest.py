"""API test fixtures: two champions to publish, records to send (helpers: tests.support.api)."""

import anyio._core._fileio  # noqa: F401
import pytest
from sklearn.pipeline import Pipeline

from tests.support.champion import sample_records, train_pipeline

# (anyio imports its file module lazily, from the thread that first serves a file; under
# pytest that import is parsed in that thread beside others, which Python 3.11 can fail with
# "AST constructor recursion depth mismatch": imported here, on the main thread.)


@pytest.fixture(scope="session")
def pipelines() -> dict[str, Pipeline]:
    """Two different champions: what a first and a second promotion publish."""
    return {"1": train_pipeline(seed=0), "2": train_pipeline(seed=1, n_estimators=20)}


@pytest.fixture(scope="session")
def records() -> list[dict]:
    return sample_records(seed=5)
