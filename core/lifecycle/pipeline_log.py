"""The record of lifecycle passes: each pass's state saved after every step (DuckDB table
`pipeline_passes`), so that a pass stopped anywhere (a failure, a kill) is continued by the
next run and shows in the history; and one MLflow run per decision (experiment
`Settings.pipeline_experiment`).

A pass's `status`: `running` (under way, or killed), `failed` (a step raised: its error is
kept), `done` (decided and recorded). One pass at a time per DPE_HOME (`one_pass_at_a_time`).
"""

import fcntl
import json
import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime

from core.config import Settings
from core.data import quarantine, warehouse
from core.errors import Unavailable

log = logging.getLogger(__name__)

LOCK_FILE = "pipeline.lock"
TABLE = """
    CREATE TABLE IF NOT EXISTS pipeline_passes (
        id BIGINT PRIMARY KEY, started TIMESTAMP NOT NULL, saved_at TIMESTAMP NOT NULL,
        status VARCHAR NOT NULL, decision VARCHAR, dataset_version VARCHAR, state JSON NOT NULL)
"""
# Passes recorded before passes were resumable (one row per finished pass).
OLD_TABLE = "pipeline_runs"


@contextmanager
def one_pass_at_a_time(settings: Settings) -> Iterator[None]:
    """Hold this DPE_HOME's pass lock (a whole pass, or one step under Airflow)."""
    settings.home.mkdir(parents=True, exist_ok=True)
    with open(settings.home / LOCK_FILE, "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as error:
            raise Unavailable(
                f"another lifecycle pass is running in {settings.home}: try again when it is done"
            ) from error
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def begin(settings: Settings, state: dict) -> int:
    """Record a new pass; returns its id (1, 2, ...)."""
    with warehouse.connect(settings, read_only=False) as con:
        _create(con)
        [(pass_id,)] = con.execute(
            "SELECT coalesce(max(id), 0) + 1 FROM pipeline_passes"
        ).fetchall()
    save(settings, {**state, "pass_id": pass_id})
    return pass_id


def save(settings: Settings, state: dict) -> None:
    """Record the pass as it now stands (after a step, or its failure)."""
    with warehouse.connect(settings, read_only=False) as con:
        _create(con)
        con.execute(
            "INSERT OR REPLACE INTO pipeline_passes VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                state["pass_id"],
                _naive(datetime.fromisoformat(state["started"])),
                _naive(datetime.now(UTC)),
                state["status"],
                state.get("decision"),
                state.get("dataset_version"),
                json.dumps(state, default=str),
            ],
        )


def unfinished(settings: Settings) -> dict | None:
    """The newest pass that did not finish (running when killed, or failed), if any."""
    rows = _passes(settings, "WHERE status <> 'done'", limit=1)
    return rows[0] if rows else None


def get(settings: Settings, pass_id: int) -> dict | None:
    rows = _passes(settings, f"WHERE id = {int(pass_id)}", limit=1)
    return rows[0] if rows else None


def last_done(settings: Settings) -> dict | None:
    """The newest finished pass."""
    rows = _passes(settings, "WHERE status = 'done'", limit=1)
    return rows[0] if rows else None


def history(settings: Settings, limit: int | None = None) -> list[dict]:
    """Past passes, newest first, as `pipeline --json` printed them, plus `saved_at` (when
    the pass was last recorded: its last step, or its failure) and, for a pass that held
    records, `quarantine` (records, held, accepted_at, accepted_by)."""
    passes = _passes(settings, "", limit)
    held = quarantine.summary(settings) if passes else {}
    return [
        {**found, "quarantine": held.get(found["pass_id"])} if found.get("pass_id") else found
        for found in passes
    ]


def _passes(settings: Settings, where: str, limit: int | None) -> list[dict]:
    if not settings.duckdb_path.exists():
        return []
    with warehouse.connect(settings) as con:
        tables = {
            row[0] for row in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()
        }
        if "pipeline_passes" not in tables:
            return _old_runs(con, limit) if OLD_TABLE in tables and not where else []
        rows = con.execute(
            f"SELECT saved_at, state FROM pipeline_passes {where} ORDER BY id DESC"
            f"{f' LIMIT {int(limit)}' if limit else ''}"
        ).fetchall()
    return [{**json.loads(state), "saved_at": _iso(saved)} for saved, state in rows]


def _create(con) -> None:
    """The passes table; the passes of an older install (`pipeline_runs`) copied into it."""
    tables = {row[0] for row in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    if "pipeline_passes" in tables:
        return
    con.execute(TABLE)
    if OLD_TABLE in tables:
        for number, (finished, result) in enumerate(_old_rows(con), 1):
            state = {**json.loads(result), "pass_id": number, "status": "done"}
            con.execute(
                "INSERT INTO pipeline_passes VALUES (?, ?, ?, 'done', ?, ?, ?)",
                [
                    number,
                    _naive(datetime.fromisoformat(state["started"])),
                    finished,
                    state.get("decision"),
                    state.get("dataset_version"),
                    json.dumps(state, default=str),
                ],
            )


def _old_rows(con) -> list[tuple]:
    return con.execute(f"SELECT finished, result FROM {OLD_TABLE} ORDER BY started").fetchall()


def _old_runs(con, limit: int | None) -> list[dict]:
    """The passes of an older install, newest first, until the next pass copies them."""
    rows = list(reversed(_old_rows(con)))[:limit]
    return [
        {**json.loads(result), "status": "done", "saved_at": _iso(finished)}
        for finished, result in rows
    ]


def _naive(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)  # stored as naive UTC


def _iso(moment: datetime) -> str:
    return moment.replace(tzinfo=UTC).isoformat(timespec="seconds")


# --- The decision's MLflow run ------------------------------------------------------------


def _tags(answer: dict) -> dict[str, str]:
    window = answer.get("window") or {}
    tags = {
        "decision": answer["decision"],
        "pass_id": str(answer.get("pass_id")),
        "dataset_version": str(answer.get("dataset_version")),
        "window": f"{window.get('from')}..{window.get('to')} ({window.get('rows')} rows)",
        "source": answer["source"],
        "challenger_run_id": str(answer.get("challenger_run_id")),
    }
    for who, scores in answer["scores"].items():
        tags[f"scores.{who}"] = json.dumps(scores)
    return tags


def log_decision(
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
            counts = {name: answer[name] for name in ("added", "updated", "rejected")}
            mlflow.log_metrics({**counts, **metrics})
            mlflow.log_dict(answer, "pass.json")
            if drift_report is not None:
                mlflow.log_dict(dict(drift_report), "drift_report.json")
    return run.info.run_id, experiments
