"""Running workbench pages in-process (AppTest) against an isolated DPE_HOME."""

import re
from pathlib import Path

import streamlit as st
from streamlit.testing.v1 import AppTest

from core.config import Settings, get_settings
from core.data.ingest import ingest
from tests.support.cli import ROOT
from tests.support.servers import free_port
from tooling.synth import write_csv

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


def use_home(monkeypatch, home: Path) -> Settings:
    """Point the environment at `home`, the API and MLflow UI at a dead port; fresh caches."""
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


def build_data_home(home: Path) -> dict:
    """Generated records ingested, a small model trained and promoted champion."""
    from core.modeling import train
    from core.tracking import registry

    home.mkdir(parents=True, exist_ok=True)
    settings = settings_for(home)
    csv_path = write_csv(home.parent / "generated.csv", RECORDS, seed=3)
    ingested = ingest(settings, source=csv_path)
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


def open_page(page: str | None = None) -> AppTest:
    """app.py run (Home), then `page` (e.g. "views/explore.py") switched to and run."""
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT_S)
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


def shown(markdown: str) -> str:
    """Markdown as the browser shows it, as far as escapes go: `N°\\_département` reads
    `N°_département` (pages escape the plain text they put in Markdown)."""
    return re.sub(r"\\(.)", r"\1", markdown)
