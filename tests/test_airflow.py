"""The Airflow DAG in Airflow's own environment (.venv-airflow, `make airflow-install`):
it parses with no import error, and `airflow dags test dpe_lifecycle` runs a whole pass on
the real ADEME sample, its tasks running our code in our .venv."""

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from core.config import Settings
from core.lifecycle.pipeline_log import history

ROOT = Path(__file__).resolve().parents[1]
AIRFLOW = ROOT / ".venv-airflow" / "bin" / "airflow"
STEPS = {"extract", "validate", "train", "evaluate", "gate_and_promote", "monitor"}

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def airflow() -> Path:
    if AIRFLOW.exists():
        return AIRFLOW
    if os.environ.get("DPE_REQUIRE_SHARED_DATA") == "1":  # CI: `make test` installs it
        pytest.fail(f"{AIRFLOW} missing: `make airflow-install` should have made it")
    pytest.skip("Airflow's environment is not installed: make airflow-install")


def airflow_env(tmp_path: Path, **extra: str) -> dict:
    return {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__PARALLELISM": "2",
        "DPE_PROJECT_PYTHON": sys.executable,
        **extra,
    }


def run(airflow: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(airflow), *args], env=env, capture_output=True, text=True, timeout=280, check=False
    )


def test_the_dag_parses_with_one_task_per_step(airflow, tmp_path):
    env = airflow_env(tmp_path)
    assert run(airflow, env, "db", "migrate").returncode == 0
    errors = run(airflow, env, "dags", "list-import-errors", "--output", "json")
    assert errors.returncode == 0, errors.stderr[-2000:]
    # Airflow prints warnings (no graphviz) on stdout before the JSON line.
    assert json.loads(errors.stdout.strip().splitlines()[-1]) == []
    tasks = run(airflow, env, "tasks", "list", "dpe_lifecycle")
    assert tasks.returncode == 0, tasks.stderr[-2000:]
    assert set(tasks.stdout.split()) >= STEPS


def test_dags_test_runs_a_pass_on_the_sample(airflow, tmp_path, sample_csv):
    home = tmp_path / "home"
    env = airflow_env(
        tmp_path,
        DPE_HOME=str(home),
        DPE_SOURCE=str(sample_csv),
        MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'mlflow.db'}",
    )
    assert run(airflow, env, "db", "migrate").returncode == 0
    done = run(airflow, env, "dags", "test", "dpe_lifecycle")
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    settings = Settings(_env_file=None, home=home)
    [last] = history(settings)
    assert last["decision"] == "first_champion", last["reasons"]
    assert last["added"] == 2200 and last["window"]["rows"] > 0
    # The new dataset version was published as an Airflow asset event.
    with sqlite3.connect(tmp_path / "airflow" / "airflow.db") as db:
        extras = [json.loads(extra) for (extra,) in db.execute("SELECT extra FROM asset_event")]
    assert extras == [{"dataset_version": last["dataset_version"]}]
