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
import streamlit as st
from streamlit.testing.v1 import AppTest

from core.config import Settings, get_settings
from core.ingest import ingest
from core.synth import write_csv
from tests.conftest import ROOT
from tests.servers import free_port

RECORDS = 1_500
TIMEOUT_S = 120


def env_for(home: Path) -> dict:
    return {
        "DPE_HOME": str(home),
        "MLFLOW_TRACKING_URI": f"sqlite:///{home / 'mlflow.db'}",
        "DPE_MODEL_STORE_URI": f"file://{home / 'store'}",
    }


def settings_for(home: Path) -> Settings:
    env = env_for(home)
    return Settings(
        _env_file=None,
        home=home,
        mlflow_tracking_uri=env["MLFLOW_TRACKING_URI"],
        model_store_uri=env["DPE_MODEL_STORE_URI"],
    )


def _use(monkeypatch, home: Path) -> Settings:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    for name, value in {
        **env_for(home),
        "DPE_API_URL": dead,
        "DPE_MLFLOW_UI_URL": dead,
        "DPE_LOG_PREDICTIONS": "false",
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    st.cache_data.clear()
    st.cache_resource.clear()
    return get_settings()


@pytest.fixture(autouse=True)
def _fresh_settings():
    yield
    get_settings.cache_clear()


@pytest.fixture
def empty_env(tmp_path, monkeypatch) -> Settings:
    home = tmp_path / "home"
    home.mkdir()
    return _use(monkeypatch, home)


def build_data_home(home: Path) -> dict:
    """Generated records ingested, a small model trained and promoted champion."""
    from core import registry, train

    home.mkdir(parents=True, exist_ok=True)
    settings = settings_for(home)
    csv_path = write_csv(home.parent / "generated.csv", RECORDS, seed=3)
    ingested = ingest(settings, source=csv_path, progress=False)
    trained = train.train(settings, "building-only", "logreg", search="none")
    rules = train.train(settings, "with-consumption", "rules", search="none")
    promoted = registry.promote(settings, trained["run_id"])
    return {
        "ingest": ingested,
        "train": trained,
        "rules": rules,
        "promote": promoted,
        "csv": csv_path,
    }


@pytest.fixture(scope="session")
def data_home(tmp_path_factory) -> tuple[Path, dict]:
    home = tmp_path_factory.mktemp("pages-data") / "home"
    return home, build_data_home(home)


@pytest.fixture
def data_env(data_home, monkeypatch) -> Settings:
    return _use(monkeypatch, data_home[0])


@pytest.fixture
def own_data_env(data_home, tmp_path, monkeypatch) -> Settings:
    """A copy of the data home this test may change (MLflow's artifacts stay shared)."""
    home = tmp_path / "home"
    shutil.copytree(data_home[0], home)
    return _use(monkeypatch, home)


def open_page(page: str | None = None) -> AppTest:
    """Home.py run, then `page` (e.g. "pages/1_Explore.py") switched to and run."""
    app = AppTest.from_file(str(ROOT / "Home.py"), default_timeout=TIMEOUT_S)
    app.run()
    if page:
        app.switch_page(page).run()
    return app


def assert_clean(app: AppTest) -> None:
    """No exception and no error box on the page."""
    assert not app.exception, [e.value for e in app.exception]
    assert not app.error, [e.value for e in app.error]


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)
