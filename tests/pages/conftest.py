"""AppTest fixtures: the workbench pages run in-process against an isolated DPE_HOME.

Pages read their settings from the environment (core.config.get_settings, lru_cached), so
each test points DPE_HOME, MLFLOW_TRACKING_URI and DPE_MODEL_STORE_URI at its own folders,
and the API and MLflow UI URLs at a loopback port where nothing listens (a service that
does not answer is a warning, never an error). Streamlit's caches are keyed on those
paths; they are cleared between tests anyway.

- `empty_env`: a fresh, empty install (no data, no model);
- `data_env`: generated records ingested, two small runs trained (logistic regression on
  `building-only`, promoted champion; the rule model on `with-consumption`), built once
  per session with the real core functions; `own_data_env` is a private copy
  for tests that change it (training, promotion).
"""

import shutil
from pathlib import Path

import pytest

from core.config import Settings, get_settings
from tests.support.pages import build_data_home, use_home


@pytest.fixture(autouse=True)
def _fresh_settings():
    yield
    get_settings.cache_clear()


@pytest.fixture
def empty_env(tmp_path, monkeypatch) -> Settings:
    home = tmp_path / "home"
    home.mkdir()
    return use_home(monkeypatch, home)


@pytest.fixture(scope="session")
def data_home(tmp_path_factory) -> tuple[Path, dict]:
    home = tmp_path_factory.mktemp("pages-data") / "home"
    return home, build_data_home(home)


@pytest.fixture
def data_env(data_home, monkeypatch) -> Settings:
    return use_home(monkeypatch, data_home[0])


@pytest.fixture
def own_data_env(data_home, tmp_path, monkeypatch) -> Settings:
    """A copy of the data home this test may change (MLflow's artifacts stay shared)."""
    home = tmp_path / "home"
    shutil.copytree(data_home[0], home)
    return use_home(monkeypatch, home)
