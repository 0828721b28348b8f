"""The record of lifecycle passes: one MLflow run per decision (experiment
`Settings.pipeline_experiment`) and one row in the DuckDB table `pipeline_runs`.

The MLflow run carries the decision, window, dataset version and the three scores as tags
and metrics, the pass and its drift report as artifacts; the DuckDB row holds the pass as
JSON for `pipeline --history` and the Pipeline page.
"""

import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime

from core.config import Settings
from core.data import warehouse

log = logging.getLogger(__name__)

TABLE = """
    CREATE TABLE IF NOT EXISTS pipeline_runs (
        started TIMESTAMP NOT NULL, finished TIMESTAMP NOT NULL, decision VARCHAR NOT NULL,
        dataset_version VARCHAR, mlflow_run_id VARCHAR, result JSON NOT NULL)
"""


def record(settings: Settings, answer: dict, drift_report: Mapping | None) -> str:
    """Record the pass; returns the MLflow run id."""
    run_id, experiments = _mlflow_run(settings, answer, drift_report)
    answer = {**answer, "run_id": run_id, "experiments": experiments}
    with warehouse.connect(settings, read_only=False) as con:
        con.execute(TABLE)
        con.execute(
            "INSERT INTO pipeline_runs VALUES (?, ?, ?, ?, ?, ?)",
            [
                _naive(datetime.fromisoformat(answer["started"])),
                _naive(datetime.now(UTC)),
                answer["decision"],
                answer["dataset_version"],
                run_id,
                json.dumps(answer, default=str),
            ],
        )
    return run_id


def history(settings: Settings, limit: int | None = None) -> list[dict]:
    """Past passes, newest first, as `pipeline --json` printed them, plus `finished` and
    `experiments` (the MLflow experiment ids of the pass and of the challenger, for links)."""
    if not settings.duckdb_path.exists():
        return []
    with warehouse.connect(settings) as con:
        [(present,)] = con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'pipeline_runs'"
        ).fetchall()
        if not present:
            return []
        rows = con.execute(
            f"SELECT finished, result FROM pipeline_runs ORDER BY started DESC, finished DESC"
            f"{f' LIMIT {int(limit)}' if limit else ''}"
        ).fetchall()
    return [{**json.loads(result), "finished": _iso(finished)} for finished, result in rows]


def _naive(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)  # stored as naive UTC


def _iso(moment: datetime) -> str:
    return moment.replace(tzinfo=UTC).isoformat(timespec="seconds")


def _tags(answer: dict) -> dict[str, str]:
    window = answer.get("window") or {}
    tags = {
        "decision": answer["decision"],
        "dataset_version": str(answer.get("dataset_version")),
        "window": f"{window.get('from')}..{window.get('to')} ({window.get('rows')} rows)",
        "source": answer["source"],
        "challenger_run_id": str(answer.get("challenger_run_id")),
    }
    for who, scores in answer["scores"].items():
        tags[f"scores.{who}"] = json.dumps(scores)
    return tags


def _mlflow_run(
    settings: Settings, answer: dict, drift_report: Mapping | None
) -> tuple[str, dict[str, str]]:
    """The decision's MLflow run; its id, and the experiment ids of the pass and challenger."""
    import mlflow

    from core.tracking import registry

    client = registry.connect(settings)
    experiment = settings.model_copy(update={"experiment_name": settings.pipeline_experiment})
    with registry.mlflow_errors(settings):
        experiment_id = registry.experiment_id(experiment, client)
        experiments = {
            "pass": experiment_id,
            "challenger": registry.experiment_id(settings, client),
        }
        with mlflow.start_run(
            experiment_id=experiment_id, run_name=f"pass-{answer['decision']}", tags=_tags(answer)
        ) as run:
            metrics = {
                f"{who}_{name}": value
                for who, scores in answer["scores"].items()
                for name, value in (scores or {}).items()
            }
            mlflow.log_metrics(
                {"added": answer["added"], "rejected": answer["rejected"], **metrics}
            )
            mlflow.log_dict(answer, "pass.json")
            if drift_report is not None:
                mlflow.log_dict(dict(drift_report), "drift_report.json")
    return run.info.run_id, experiments
