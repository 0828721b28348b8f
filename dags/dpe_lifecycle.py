"""The DPE lifecycle, daily: one task per step of `core.lifecycle.pipeline`.

Airflow has its own environment (.venv-airflow, requirements-airflow.txt): its FastAPI pin
conflicts with the project's. So each task runs the step in the project's environment,
`python -m core pipeline-step STEP --input STATE --json`, and hands the state it prints to
the next task (XCom): the dataset version travels with it. A new dataset version is
published as the asset `dpe://dataset` with the version in its extra.

DPE_PROJECT_DIR (default: this file's repository) and DPE_PROJECT_PYTHON (default: its
.venv) say where the project is; DPE_* and MLFLOW_* settings pass through the environment.
"""

import json
import os
import subprocess
from datetime import datetime, timedelta
from pathlib import Path

from airflow.sdk import Asset, dag, task

PROJECT = Path(os.environ.get("DPE_PROJECT_DIR", Path(__file__).resolve().parents[1]))
PYTHON = os.environ.get("DPE_PROJECT_PYTHON", str(PROJECT / ".venv" / "bin" / "python"))
DATASET = Asset(uri="dpe://dataset", name="dpe_dataset")


def run_step(step: str, state: dict | None = None) -> dict:
    """One pipeline step in the project's environment; its JSON state, or the error the
    CLI printed (its last lines: the step's own message)."""
    command = [PYTHON, "-m", "core", "pipeline-step", step, "--input", json.dumps(state or {})]
    done = subprocess.run(
        [*command, "--json"], cwd=PROJECT, capture_output=True, text=True, check=False
    )
    print(done.stderr[-20_000:])  # the step's progress, into the task's log
    if done.returncode != 0:
        raise RuntimeError(f"pipeline step {step} failed: {done.stderr.strip()[-1000:]}")
    return json.loads(done.stdout)


@dag(
    dag_id="dpe_lifecycle",
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["dpe"],
    doc_md=__doc__,
)
def dpe_lifecycle():
    @task(retries=3, retry_delay=timedelta(minutes=5), outlets=[DATASET])
    def extract(*, outlet_events=None) -> dict:
        state = run_step("extract")
        if state["decision"] != "no_new_data":  # a new version: published
            outlet_events[DATASET].extra = {"dataset_version": state["dataset_version"]}
        return state

    @task
    def validate(state: dict) -> dict:
        return run_step("validate", state)

    @task
    def train(state: dict) -> dict:
        return run_step("train", state)

    @task
    def evaluate(state: dict) -> dict:
        return run_step("evaluate", state)

    @task
    def gate_and_promote(state: dict) -> dict:
        return run_step("gate_and_promote", state)

    @task
    def monitor(state: dict) -> dict:
        return run_step("monitor", state)

    monitor(gate_and_promote(evaluate(train(validate(extract())))))


dpe_lifecycle()
