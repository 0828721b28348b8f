"""The DPE lifecycle, daily: one task per step of `core.lifecycle.pipeline`.

Airflow has its own environment (.venv-airflow, requirements-airflow.txt): its FastAPI pin
conflicts with the project's. So each task runs the step in the project's environment,
`python -m core pipeline-step STEP --pass ID --json`; the pass's state is recorded by the
project at every step (a run after a failure continues the unfinished pass), and the pass id
travels between tasks as XCom. A new dataset version is published as the asset
`dpe://dataset` (with the version in its extra) by `publish_dataset`, skipped otherwise.

Failures: the CLI's exit code says whether trying again can help (core/errors.py: 5 =
unavailable, e.g. MLflow down or a timeout); only those are retried (DPE_AIRFLOW_RETRIES
times, default 3, 5 minutes apart), anything else (a source that does not resolve, bad
data, a bug) fails the task at once. Each task has an `execution_timeout`.

Schedule: daily, not paused on creation (`make airflow` is how the daily pass starts): when
Airflow first loads the DAG it runs the latest day at once (catchup off: never the days
before). A run triggered by hand meanwhile waits for it (one run at a time) and continues
or repeats its pass: the second finds `no_new_data`.

DPE_PROJECT_DIR (default: this file's repository) and DPE_PROJECT_PYTHON (default: its
.venv) say where the project is; DPE_* and MLFLOW_* settings pass through the environment.
"""

import json
import os
import subprocess
from datetime import datetime, timedelta
from pathlib import Path

from airflow.sdk import Asset, dag, task
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

PROJECT = Path(os.environ.get("DPE_PROJECT_DIR", Path(__file__).resolve().parents[1]))
PYTHON = os.environ.get("DPE_PROJECT_PYTHON", str(PROJECT / ".venv" / "bin" / "python"))
DATASET = Asset(uri="dpe://dataset", name="dpe_dataset")
RETRYABLE_EXIT = 5  # core.errors.Unavailable
# Tries after a retryable failure; `make pipeline` (one pass, someone waiting) sets 0: the
# next run continues the pass anyway.
RETRIES = int(os.environ.get("DPE_AIRFLOW_RETRIES", "3"))
# The ADEME fetch has its own deadline (DPE_HTTP_FETCH_DEADLINE_S, 30 min by default).
EXTRACT_TIMEOUT = timedelta(minutes=45)
TRAIN_TIMEOUT = timedelta(hours=2)  # a grid search on a large dataset
STEP_TIMEOUT = timedelta(minutes=30)


def run_step(step: str, pass_id: int | None = None) -> dict:
    """One pipeline step in the project's environment; the pass's state as it printed it.
    A failure trying again can help is raised for Airflow to retry; any other fails now."""
    command = [PYTHON, "-m", "core", "pipeline-step", step, "--json"]
    if pass_id is not None:
        command += ["--pass", str(pass_id)]
    done = subprocess.run(command, cwd=PROJECT, capture_output=True, text=True, check=False)
    print(done.stderr[-20_000:])  # the step's progress, into the task's log
    if done.returncode == 0:
        return json.loads(done.stdout)
    message = f"pipeline step {step} failed: {done.stderr.strip()[-1000:]}"
    if done.returncode == RETRYABLE_EXIT:
        raise RuntimeError(message)
    raise AirflowFailException(message)


def step_task(step: str, timeout: timedelta = STEP_TIMEOUT):
    """The task running `step` on the pass the task before handed on."""

    @task(task_id=step, execution_timeout=timeout)
    def run(state: dict) -> dict:
        return run_step(step, state["pass_id"])

    return run


@dag(
    dag_id="dpe_lifecycle",
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    is_paused_upon_creation=False,
    default_args={"retries": RETRIES, "retry_delay": timedelta(minutes=5)},
    tags=["dpe"],
    doc_md=__doc__,
)
def dpe_lifecycle():
    @task(execution_timeout=EXTRACT_TIMEOUT)
    def extract() -> dict:
        """Opens the unfinished pass (or a new one) and ingests what is new."""
        return run_step("extract")

    @task(outlets=[DATASET], retries=0)
    def publish_dataset(state: dict, *, outlet_events=None) -> None:
        """The asset event of a new dataset version; skipped when the pass made none."""
        version = state["dataset_version"]
        if version is None or version == state["previous_version"]:
            raise AirflowSkipException("no new dataset version")
        outlet_events[DATASET].extra = {"dataset_version": version}

    state = extract()
    publish_dataset(state)
    state = step_task("validate")(state)
    state = step_task("train", TRAIN_TIMEOUT)(state)
    state = step_task("evaluate")(state)
    state = step_task("gate_and_promote")(state)
    step_task("monitor")(state)


DAG = dpe_lifecycle()
