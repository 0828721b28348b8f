"""Quarantine: records kept in the database but out of training until a person accepts them.

The lifecycle's data gate (`core.lifecycle`) holds the increment it refuses here, with its
reasons (`hold`); `accept` releases a held increment. Training reads a dataset version
through `for_training`: held records are left out, and where a held record replaced an
accepted one (an update whose labels were refused), the accepted content, read from the
dataset version before the refused increment, trains instead.

A record is held as it was refused: its `N°DPE` and a fingerprint of its cleaned content.
When the source later sends that record changed (a corrected label), the new content is not
held: it is judged by the pass that brings it.

Table `quarantine` (DuckDB): pass_id, n_dpe, fingerprint, base_version (the dataset version
before the increment), reasons (JSON list), held_at, accepted_at, accepted_by.
"""

import hashlib
import json
from datetime import UTC, datetime

import pandas as pd

from core.config import Settings
from core.data import warehouse
from core.errors import NotFound

ID = "n_dpe"
TABLE = """
    CREATE TABLE IF NOT EXISTS quarantine (
        pass_id BIGINT NOT NULL, n_dpe VARCHAR NOT NULL, fingerprint VARCHAR NOT NULL,
        base_version VARCHAR, reasons JSON NOT NULL, held_at TIMESTAMP NOT NULL,
        accepted_at TIMESTAMP, accepted_by VARCHAR)
"""


def fingerprints(frame: pd.DataFrame) -> pd.Series:
    """A digest of each cleaned record's content (every column, as text), by row."""
    columns = sorted(name for name in frame.columns if name != "reject_reason")
    # Value by value (a column's own formatting may depend on its other values).
    rows = frame[columns].astype(object).itertuples(index=False, name=None)
    digests = [
        hashlib.blake2b("\x1f".join(map(str, row)).encode(), digest_size=12).hexdigest()
        for row in rows
    ]
    return pd.Series(digests, index=frame.index, dtype=object)


def hold(
    settings: Settings,
    pass_id: int,
    records: pd.DataFrame,
    reasons: list[str],
    base_version: str | None,
) -> int:
    """Hold `records` (cleaned rows of a dataset version) out of training for pass
    `pass_id`, with the reasons the pass refused them (`base_version`: the version before
    them, which holds what the updated ones replaced); returns how many are held."""
    rows = pd.DataFrame(
        {
            "pass_id": pass_id,
            "n_dpe": records[ID].to_numpy(),
            "fingerprint": fingerprints(records).to_numpy(),
            "base_version": base_version,
            "reasons": json.dumps(reasons, ensure_ascii=False),
            "held_at": _now(),
        }
    )
    with warehouse.connect(settings, read_only=False) as con:
        con.execute(TABLE)
        con.execute("DELETE FROM quarantine WHERE pass_id = ?", [pass_id])  # a pass run again
        con.register("held_rows", rows)
        con.execute(
            "INSERT INTO quarantine (pass_id, n_dpe, fingerprint, base_version, reasons, held_at) "
            "SELECT pass_id, n_dpe, fingerprint, base_version, reasons, held_at FROM held_rows"
        )
    return len(rows)


def accept(settings: Settings, pass_id: int, by: str) -> dict:
    """Release pass `pass_id`'s held records to training (a person looked at them)."""
    with warehouse.connect(settings, read_only=False) as con:
        con.execute(TABLE)
        [(held, pending)] = con.execute(
            "SELECT count(*), count(*) FILTER (WHERE accepted_at IS NULL) "
            "FROM quarantine WHERE pass_id = ?",
            [pass_id],
        ).fetchall()
        if not held:
            raise NotFound(f"pass {pass_id} has no quarantined records")
        now = _now()
        con.execute(
            "UPDATE quarantine SET accepted_at = ?, accepted_by = ? "
            "WHERE pass_id = ? AND accepted_at IS NULL",
            [now, by, pass_id],
        )
    return {"pass_id": pass_id, "accepted": pending, "accepted_by": by, "accepted_at": _iso(now)}


def summary(settings: Settings) -> dict[int, dict]:
    """Per pass that held records: how many, how many still held, when and by whom accepted."""
    rows = _query(
        settings,
        "SELECT pass_id, count(*), count(*) FILTER (WHERE accepted_at IS NULL), "
        "max(accepted_at), max(accepted_by) FROM quarantine GROUP BY pass_id",
    )
    return {
        int(pass_id): {
            "records": records,
            "held": held,
            "accepted_at": _iso(accepted_at) if accepted_at else None,
            "accepted_by": accepted_by,
        }
        for pass_id, records, held, accepted_at, accepted_by in rows
    }


def held_mask(settings: Settings, frame: pd.DataFrame) -> pd.Series:
    """Which rows of `frame` (cleaned records) are held, as held: same N°DPE, same content."""
    return _matches(frame, _held(settings)).notna()


def for_training(settings: Settings, frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` (a dataset version's cleaned records) as training reads it: held records
    left out; for a held update, the content it replaced, when that one is not held."""
    held = _held(settings)
    holder = _matches(frame, held)
    if holder.isna().all():
        return frame
    base_of = {pass_id: base for _, _, pass_id, base in held}
    replaced = []
    for pass_id, rows in frame[holder.notna()].groupby(holder.dropna()):
        base = base_of.get(int(pass_id))
        if base is None:
            continue
        _, before = warehouse.load_dataset(settings, base)
        before = before[before[ID].isin(rows[ID])]
        replaced.append(before[_matches(before, held).isna()])
    kept = frame[holder.isna()]
    return (
        pd.concat([kept, *replaced], ignore_index=True) if replaced else kept.reset_index(drop=True)
    )


def _held(settings: Settings) -> list[tuple]:
    """(N°DPE, fingerprint, pass id, base version) of every record still held."""
    return _query(
        settings,
        "SELECT n_dpe, fingerprint, min(pass_id), any_value(base_version) FROM quarantine "
        "WHERE accepted_at IS NULL GROUP BY n_dpe, fingerprint",
    )


def _matches(frame: pd.DataFrame, held: list[tuple]) -> pd.Series:
    """For each row of `frame`, the pass that holds it (NaN when none)."""
    found = pd.Series(float("nan"), index=frame.index)
    if not held or ID not in frame.columns:
        return found
    by_record = {(n_dpe, fingerprint): pass_id for n_dpe, fingerprint, pass_id, _ in held}
    candidates = frame[frame[ID].isin({row[0] for row in held})]
    if candidates.empty:
        return found
    keys = zip(candidates[ID], fingerprints(candidates), strict=True)
    found.loc[candidates.index] = [by_record.get(key, float("nan")) for key in keys]
    return found


def _query(settings: Settings, sql: str) -> list[tuple]:
    """Rows of a query on the quarantine table (none before any hold, or any data)."""
    if not settings.duckdb_path.exists():
        return []
    with warehouse.connect(settings) as con:
        [(present,)] = con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'quarantine'"
        ).fetchall()
        return con.execute(sql).fetchall() if present else []


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)  # stored as naive UTC


def _iso(moment: datetime) -> str:
    return moment.replace(tzinfo=UTC).isoformat(timespec="seconds")
