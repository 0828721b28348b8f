"""What the Pipeline page shows of the lifecycle passes: the history as a table (every cell
text or a number: no "None" for what a pass did not reach), and the words for a pass's
status, failure and quarantine."""

import pandas as pd

from ui.format import short, when

WHO = ("challenger", "champion", "rules")
NONE = "—"


def score(scores: dict | None, who: str, metric: str) -> str:
    value = ((scores or {}).get(who) or {}).get(metric)
    return NONE if value is None else f"{value:.3f}"


def status_text(run: dict) -> str:
    """`done`, or `failed at train` / `running (after extract)` for an unfinished pass."""
    status = run.get("status") or "done"
    if status == "failed" and run.get("error"):
        return f"failed at {run['error'].get('step')}"
    if status == "running":
        steps = run.get("steps_done") or []
        return f"running (after {steps[-1]})" if steps else "running"
    return status


def history_table(runs: list[dict], metric: str) -> pd.DataFrame:
    rows = []
    for run in runs:
        window = run.get("window") or {}
        rows.append(
            {
                "pass": str(run.get("pass_id") or NONE),
                "started": when(run["started"]),
                "last step": when(run.get("saved_at")),
                "status": status_text(run),
                "decision": run.get("decision") or NONE,
                "dataset": short(run.get("dataset_version")),
                "added": int(run.get("added") or 0),
                "updated": int(run.get("updated") or 0),
                "rejected": int(run.get("rejected") or 0),
                "window": f"{window['from']} → {window['to']}" if window else NONE,
                "window rows": str(window["rows"]) if window else NONE,
                **{who: score(run.get("scores"), who, metric) for who in WHO},
                "drift": ", ".join((run.get("drift") or {}).get("flagged") or []) or NONE,
            }
        )
    return pd.DataFrame(rows)


def quarantine_text(held: dict) -> str:
    """What became of the records a refused pass holds."""
    if held["held"]:
        return (
            f"{held['held']} of its records are quarantined: kept, out of training, until "
            "someone accepts them."
        )
    return (
        f"Its {held['records']} quarantined records were accepted by {held['accepted_by']} "
        f"on {when(held['accepted_at'])} UTC: the next pass that trains uses them."
    )


def error_text(run: dict) -> str:
    error = run.get("error") or {}
    retry = "trying again later can help" if error.get("retryable") else "it needs a fix first"
    return (
        f"Pass {run.get('pass_id')} stopped at step {error.get('step')}: {error.get('message')} "
        f"({retry}). The next run, from here, the CLI or Airflow, continues it."
    )
