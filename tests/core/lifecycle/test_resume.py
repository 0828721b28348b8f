"""Passes that stop half-way are continued, never lost (issue 24, item 8), against a real
MLflow server: one pass killed just after its extract committed, then failing with MLflow
down, then killed just after the champion alias moved. Each rerun continues it."""

import json

import pytest
from mlflow import MlflowClient

from core.config import Settings
from core.storage import Store
from core.tracking.champion_store import MANIFEST_PATH
from tests.support.cli import run_cli, run_cli_killed
from tests.support.servers import free_port
from tooling.synth import write_csv

BUILDING_ONLY = {"DPE_PIPELINE_FEATURES": "building-only", "DPE_PIPELINE_MODEL": "logreg"}


def history(env: dict) -> list[dict]:
    code, answer, stderr = run_cli("pipeline", "--history", env=env)
    assert code == 0, stderr[-2000:]
    return answer["runs"]


@pytest.mark.slow
@pytest.mark.timeout(1200)  # several passes, each a CLI process training
def test_a_stopped_pass_is_continued_and_its_increment_gated(tmp_path, mlflow_server):
    env = {
        "DPE_HOME": str(tmp_path / "home"),
        "MLFLOW_TRACKING_URI": mlflow_server,
        "DPE_EXPERIMENT_NAME": f"resume-{tmp_path.name}",
        "DPE_REGISTERED_MODEL_NAME": f"resume-{tmp_path.name}",
        "DPE_PIPELINE_EXPERIMENT": f"resume-pass-{tmp_path.name}",
        **BUILDING_ONLY,
    }
    first = str(write_csv(tmp_path / "first.csv", 600, seed=11))

    # Killed right after the ingest committed, before the pass recorded its extract.
    code = run_cli_killed(
        "core.data.ingest.ingest", "after", "pipeline", "--source", first, env=env
    )
    assert code == -9
    [killed] = history(env)
    assert (killed["pass_id"], killed["status"], killed["steps_done"]) == (1, "running", [])

    # Rerun with MLflow down: pass 1 continues (its increment is not lost as no_new_data)
    # and fails at train, recorded.
    down = {**env, "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{free_port()}"}
    code, _, stderr = run_cli("pipeline", "--source", first, env=down)
    assert code != 0 and "MLflow server" in stderr
    [failed] = history(env)
    assert (failed["pass_id"], failed["status"]) == (1, "failed")
    assert failed["steps_done"] == ["extract", "validate"] and failed["added"] == 600
    assert failed["error"]["step"] == "train" and "unreachable" in failed["error"]["message"]

    # MLflow back; the rerun continues pass 1 and is killed just after the alias moved
    # (before the store got the champion).
    code = run_cli_killed(
        "core.tracking.registry._export", "before", "pipeline", "--source", first, env=env
    )
    assert code == -9
    [running] = history(env)
    assert (running["pass_id"], running["status"]) == (1, "running")
    assert running["steps_done"][-1] == "evaluate"
    # The registry named too: a registry URI another test of this process set is not ours.
    client = MlflowClient(mlflow_server, registry_uri=mlflow_server)
    alias = client.get_model_version_by_alias(env["DPE_REGISTERED_MODEL_NAME"], "champion")
    store = Store(Settings(_env_file=None, home=tmp_path / "home"))
    assert not store.exists(MANIFEST_PATH)

    # The next run finishes pass 1: the promotion is recorded, the store serves it.
    code, done, stderr = run_cli("pipeline", "--source", first, env=env)
    assert code == 0, stderr[-2000:]
    assert (done["pass_id"], done["status"], done["decision"]) == (1, "done", "first_champion")
    assert done["added"] == 600  # the increment was gated, not lost as no_new_data
    assert done["champion_after"]["model_version"] == alias.version
    assert json.loads(store.read_bytes(MANIFEST_PATH))["model_version"] == alias.version
    assert [(run["pass_id"], run["status"]) for run in history(env)] == [(1, "done")]
