"""The Airflow DAG in Airflow's own environment (.venv-airflow, `make airflow-install`):
it parses with one task per step; `airflow dags test dpe_lifecycle` runs a whole pass on
the real ADEME sample (its tasks running our code in our .venv) and publishes the dataset
asset; the DAG's publish function skips when a pass made no new version; `make airflow`
and `make pipeline` work as docs/operations.md says (issue 23: items 1, 2, 5, 6, 7)."""

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from core.config import Settings
from core.lifecycle.pipeline_log import history
from tests.support.servers import descendants, free_port, listening_addresses, running

ROOT = Path(__file__).resolve().parents[1]
AIRFLOW = ROOT / ".venv-airflow" / "bin" / "airflow"
TASKS = {"extract", "publish_dataset", "validate", "train", "evaluate", "gate_and_promote"}
TASKS |= {"monitor"}

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


def user_env(tmp_path: Path, **extra: str) -> dict:
    """The environment of a user running `make` in the checkout: Airflow's venv not on PATH,
    state in the test's DPE_HOME, MLflow on a local file."""
    path = os.pathsep.join(
        entry for entry in os.environ["PATH"].split(os.pathsep) if ".venv" not in entry
    )
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "DPE_"))},
        "PATH": path,
        "DPE_HOME": str(tmp_path / "home"),
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
        **extra,
    }


def run(airflow: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(airflow), *args], env=env, capture_output=True, text=True, timeout=900, check=False
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
    assert set(tasks.stdout.split()) >= TASKS


def asset_events(tmp_path: Path) -> list[dict]:
    with sqlite3.connect(tmp_path / "airflow" / "airflow.db") as db:
        return [json.loads(extra) for (extra,) in db.execute("SELECT extra FROM asset_event")]


def publish(airflow: Path, env: dict, state: dict) -> dict:
    """The DAG's `publish_dataset` run on `state` in Airflow's environment: the asset's
    extra it set, or that it skipped."""
    script = (
        "import json, sys, types\n"
        "from airflow.sdk.exceptions import AirflowSkipException\n"
        f"sys.path.insert(0, {str(ROOT / 'dags')!r})\n"
        "from dpe_lifecycle import DAG, DATASET\n"
        "events = {DATASET: types.SimpleNamespace(extra=None)}\n"
        "task = DAG.get_task('publish_dataset')\n"
        "try:\n"
        "    task.python_callable(json.loads(sys.argv[1]), outlet_events=events)\n"
        "except AirflowSkipException as skipped:\n"
        "    print(json.dumps({'skipped': str(skipped)}))\n"
        "else:\n"
        "    print(json.dumps({'extra': events[DATASET].extra}))\n"
    )
    python = airflow.parent / "python"
    done = subprocess.run(
        [str(python), "-c", script, json.dumps(state)],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.timeout(1200)  # a whole pass through Airflow
def test_dags_test_runs_a_pass_and_publishes_only_a_new_dataset(airflow, tmp_path, sample_csv):
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
    assert asset_events(tmp_path) == [{"dataset_version": last["dataset_version"]}]

    # The same source again: the extract task's step (as the DAG runs it) makes no new
    # version, and the DAG's publish function skips: no asset event (anything scheduled on
    # the asset would otherwise run every day).
    extract = subprocess.run(
        [sys.executable, "-m", "core", "pipeline-step", "extract", "--json"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert extract.returncode == 0, extract.stderr[-3000:]
    again = json.loads(extract.stdout)
    assert again["decision"] == "no_new_data"
    assert publish(airflow, env, again) == {"skipped": "no new dataset version"}
    # ...while the first pass's state publishes its version (the function is not a no-op).
    first = {**again, "dataset_version": last["dataset_version"], "previous_version": None}
    assert publish(airflow, env, first) == {"extra": {"dataset_version": last["dataset_version"]}}


@pytest.mark.timeout(900)
def test_make_airflow_starts_airflow_on_loopback_as_the_readme_says(airflow, tmp_path):
    port = free_port()
    airflow_home = tmp_path / "home" / "airflow"
    env = user_env(tmp_path, DPE_AIRFLOW_PORT=str(port), DPE_SOURCE=str(tmp_path / "not-there.csv"))
    health = f"http://127.0.0.1:{port}/api/v2/monitor/health"
    with running(["make", "airflow"], health, tmp_path / "make.log", env, 240, cwd=ROOT) as make:
        components = wait_healthy(health)
        assert set(components) >= {"scheduler", "dag_processor", "triggerer"}
        assert "Airflow" in httpx.get(f"http://127.0.0.1:{port}/", timeout=10).text
        ours = descendants(make.pid)
        listening = listening_addresses(ours)
        assert ("127.0.0.1", port) in listening
        # Nothing else: no log server on 0.0.0.0:8793/8794 (issue 23, item 7).
        assert {address for address, _ in listening} == {"127.0.0.1"}, listening
        # The daily schedule runs without anyone unpausing the DAG (issue 23, item 6).
        assert dag_paused(airflow_home / "airflow.db") is False
    assert wait_gone(ours) == [], "make airflow left processes behind"


def wait_healthy(url: str, timeout_s: float = 120) -> dict:
    """The health answer once every component is healthy."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = httpx.get(url, timeout=10).json()
        if all(part.get("status") == "healthy" for part in found.values()):
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"Airflow components not healthy: {found}")
        time.sleep(1)


def dag_paused(database: Path, timeout_s: float = 120) -> bool:
    """Whether the DAG is paused, once the DAG processor registered it."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with sqlite3.connect(database) as db:
            found = db.execute("SELECT is_paused FROM dag WHERE dag_id = 'dpe_lifecycle'")
            row = found.fetchone()
        if row is not None:
            return bool(row[0])
        time.sleep(1)
    raise AssertionError("the DAG was never registered")


def wait_gone(pids: list[int], timeout_s: float = 30) -> list[int]:
    """The processes still alive after `timeout_s` (killed, then listed)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        alive = [pid for pid in pids if Path(f"/proc/{pid}").exists()]
        if not alive:
            return []
        time.sleep(0.5)
    for pid in alive:
        os.kill(pid, 9)
    return alive


@pytest.mark.timeout(900)
def test_make_pipeline_fails_fast_on_a_source_that_does_not_resolve(airflow, tmp_path):
    """Offline: no retry 5 minutes apart (15 minutes before), the reason in plain words."""
    source = "https://data.ademe.invalid/data-fair/api/v1/datasets/dpe-v2-tertiaire-2/lines"
    env = user_env(tmp_path, DPE_SOURCE=source, DPE_AIRFLOW_PORT=str(free_port()))
    started = time.monotonic()
    done = subprocess.run(
        ["make", "pipeline"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    elapsed = time.monotonic() - started
    output = done.stdout + done.stderr
    assert done.returncode != 0, output[-3000:]
    assert "UP_FOR_RETRY" not in output and "up_for_retry" not in output
    assert "is unknown to this machine" in output
    tail = output[output.index("make pipeline: the pass, as recorded:") :]
    assert "summary: pass 1 failed at step extract: cannot reach the ADEME API" in tail, tail
    assert "(not retryable)" in tail
    [failed] = history(Settings(_env_file=None, home=tmp_path / "home"))
    assert failed["error"]["step"] == "extract" and failed["error"]["retryable"] is False
    print(f"make pipeline, unresolvable source: failed in {elapsed:.0f} s")
