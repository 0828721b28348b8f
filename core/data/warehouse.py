"""The DuckDB database (`Settings.duckdb_path`) and the queries pages and CLI need.

Tables, all written by `core.data.ingest` in one transaction per ingest:
- `raw_dpe`: records as the source gave them (official ADEME names, text), one per `N°DPE`;
- `dpe`: the same records cleaned: typed snake_case columns, `reject_reason` (NULL when
  valid) and `reject_code` (its codes, `core.data.validation.ERROR_CODES`, joined by `|`),
  placeholder flags, and `row_hash` (the digest dataset versions are built from);
- `dataset_versions`: one row per dataset version (content hash of `dpe`), with its counts;
- `ingests`: one row per successful ingest; the latest one names the current version.

Connections live for one call: a DuckDB connection is not safe across threads, and a file
held open by one process (the workbench) would keep another (a CLI ingest) from writing.
Readers open it read-only, so several processes read at once; a writer waits for them.
While another process ingests (it holds the file), readers never wait: they read the last
committed state instead, its records from the dataset version's Parquet snapshot and its
`ingests` and `dataset_versions` rows from `committed.json`, written after each commit;
`status()` then says `ingest_running`.
"""

import io
import json
import logging
import os
import threading
import time
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from core.config import Settings
from core.data.schema import COLUMNS, LABELS, RECORD_FIELDS
from core.data.validation import clean_sql
from core.errors import DpeError, NotFound, Unavailable
from core.storage import Store

if TYPE_CHECKING:  # loaded where frames are made: an ingest never needs pandas
    import pandas as pd

log = logging.getLogger(__name__)

NO_DATA = "no dataset yet: run `python -m core ingest` (see --help for sources)"
SQL_TYPES = {"string": "VARCHAR", "number": "DOUBLE", "integer": "BIGINT", "date": "DATE"}
# Columns `dpe` adds to the 63 typed ones, in this order.
CLEAN_EXTRA_COLUMNS = {
    "reject_reason": "VARCHAR",
    "reject_code": "VARCHAR",
    "surface_placeholder": "BOOLEAN NOT NULL",
    "conso_placeholder": "BOOLEAN NOT NULL",
}
COUNT_COLUMNS = ("rows", "labelled", "rejected", "surface_placeholders", "conso_placeholders")
TOP_CATEGORIES = 5
LOCK_WAIT_S = 10.0  # readers are brief; past this, another process is ingesting
BUSY = "another ingest is running: try again when it is done"

# DuckDB refuses, within one process, connections to one file with different configurations
# (read-only and read-write). While this process writes (an ingest in a worker thread, e.g.
# Home's), its readers open the file as the writer does and share its instance: the writer's
# transaction hides its uncommitted rows, and no new read-only instance keeps it waiting.
_writers = 0
_writers_lock = threading.Lock()
SNAPSHOT_DIR = "datasets"
COMMITTED_FILE = "committed.json"
COMMITTED_COPY = "committed_copy"  # the database name readers get during another's ingest


def snapshot_path(version: str) -> str:
    """Where a dataset version's Parquet snapshot lies in the object store."""
    return f"{SNAPSHOT_DIR}/{version}.parquet"


def quote(name: str) -> str:
    """A SQL identifier: official ADEME names hold quotes, accents and parentheses."""
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    """A SQL string literal (for what DuckDB takes no `?` parameter for: paths in COPY,
    ATTACH, read_csv)."""
    return "'" + text.replace("'", "''") + "'"


def create_tables(con: duckdb.DuckDBPyConnection) -> None:
    raw = ", ".join(f"{quote(official)} VARCHAR" for official, _, _ in COLUMNS)
    typed = ", ".join(f"{snake} {SQL_TYPES[kind]}" for _, snake, kind in COLUMNS)
    extra = ", ".join(f"{name} {kind}" for name, kind in CLEAN_EXTRA_COLUMNS.items())
    counts = ", ".join(f"{name} BIGINT NOT NULL" for name in COUNT_COLUMNS)
    con.execute(f"""
        CREATE TABLE IF NOT EXISTS raw_dpe ({raw});
        CREATE TABLE IF NOT EXISTS dpe ({typed}, {extra}, row_hash UBIGINT NOT NULL);
        CREATE TABLE IF NOT EXISTS dataset_versions (
            version VARCHAR PRIMARY KEY, created_at TIMESTAMP NOT NULL, source VARCHAR NOT NULL,
            {counts}, snapshot VARCHAR NOT NULL);
        CREATE TABLE IF NOT EXISTS ingests (
            id INTEGER PRIMARY KEY, ingested_at TIMESTAMP NOT NULL, source VARCHAR NOT NULL,
            dataset_version VARCHAR NOT NULL, rows BIGINT, labelled BIGINT, duplicates BIGINT,
            rejected BIGINT, added BIGINT, updated BIGINT);
    """)
    _add_reject_codes(con)


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> set[str]:
    return {
        name for (name,) in con.execute(f"SELECT name FROM pragma_table_info('{table}')").fetchall()
    }


def _add_reject_codes(con: duckdb.DuckDBPyConnection) -> None:
    """A database from before `reject_code`: the column added, filled by cleaning the raw
    records again (the row hashes leave it out: no record changes, no version either)."""
    if "reject_code" in _columns(con, "dpe"):
        return
    con.execute("ALTER TABLE dpe ADD COLUMN reject_code VARCHAR")
    con.execute(f"""
        UPDATE dpe SET reject_code = cleaned.reject_code
        FROM ({clean_sql("raw_dpe")}) cleaned
        WHERE dpe.n_dpe = cleaned.n_dpe AND dpe.reject_reason IS NOT NULL
    """)


@contextmanager
def connect(settings: Settings, read_only: bool = True):
    """A connection for this call only; closed when the block ends."""
    path = settings.duckdb_path
    if read_only and not path.exists():
        raise NotFound(NO_DATA)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not read_only:
        _count_writer(+1)
    try:
        con = _open(path, read_only)
        if con is None:  # another process is ingesting: its last commit, without waiting
            con = _committed_copy(settings)
        try:
            yield con
        finally:
            con.close()
    finally:
        if not read_only:
            _count_writer(-1)


def _count_writer(step: int) -> None:
    global _writers
    with _writers_lock:
        _writers += step


def _open(path: Path, read_only: bool) -> duckdb.DuckDBPyConnection | None:
    """Open the file, waiting up to LOCK_WAIT_S for a connection in the way to close; a
    reader does not wait for another process's ingest (None)."""
    deadline = time.monotonic() + LOCK_WAIT_S
    problem: duckdb.Error
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only and not _writers)
        except duckdb.ConnectionException as error:
            # This process has the file open with the other mode. A reader can share a
            # writer's instance (an ingest in another thread: its transaction hides its
            # uncommitted rows); a writer waits for this process's readers to close.
            if read_only:
                return duckdb.connect(str(path))
            problem = error
        except duckdb.IOException as error:
            if "lock" not in str(error):
                log.error("database %s cannot be opened: %s", path, error)
                raise DpeError(f"the database in {path.parent} cannot be opened") from error
            if read_only:  # only a writer locks readers out: an ingest
                return None
            problem = error  # another process holds it: an ingest, or a reader
        if time.monotonic() > deadline:
            log.debug("database %s is busy: %s", path, problem)  # names the holder's PID
            raise Unavailable(BUSY) from problem
        time.sleep(0.05)


def write_committed(con: duckdb.DuckDBPyConnection, settings: Settings) -> None:
    """Write `committed.json` (the `ingests` and `dataset_versions` rows) from `con`, just
    after an ingest's commit: what readers see while the next ingest runs."""
    tables = {
        name: _records(con, f"SELECT * FROM {name}") for name in ("ingests", "dataset_versions")
    }
    target = settings.home / COMMITTED_FILE
    partial = target.with_name(target.name + ".tmp")
    partial.write_text(json.dumps(tables, default=str), encoding="utf-8")
    os.replace(partial, target)  # atomic: a reader sees the old file or the new one


def _committed_copy(settings: Settings) -> duckdb.DuckDBPyConnection:
    """An in-memory database with the tables readers query, as the last commit left them;
    `dpe` from the current version's snapshot (without `row_hash`; no `raw_dpe`)."""
    committed = settings.home / COMMITTED_FILE
    if not committed.exists():
        raise Unavailable(f"{BUSY} (nothing committed to show meanwhile)")
    import pandas as pd

    tables = json.loads(committed.read_text(encoding="utf-8"))
    con = duckdb.connect()
    con.execute(f"ATTACH ':memory:' AS {COMMITTED_COPY}; USE {COMMITTED_COPY}")
    create_tables(con)
    for name, rows in tables.items():
        if rows:
            con.register("committed_rows", pd.DataFrame(rows))
            con.execute(f"INSERT INTO {name} BY NAME SELECT * FROM committed_rows")
            con.unregister("committed_rows")
    latest = _latest_ingest(con)
    if latest is not None:
        store, path = Store(settings), snapshot_path(latest["dataset_version"])
        local = store.local_path(path)
        con.execute("DROP TABLE dpe")
        if local is not None:  # read in place, not copied into memory
            con.execute(f"CREATE VIEW dpe AS SELECT * FROM read_parquet({literal(str(local))})")
        else:
            con.register("snapshot_rows", pd.read_parquet(io.BytesIO(store.read_bytes(path))))
            con.execute("CREATE TABLE dpe AS SELECT * FROM snapshot_rows")
            con.unregister("snapshot_rows")
    return con


def ingest_running(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether `con` reads the last commit because another process is ingesting."""
    [(name,)] = con.execute("SELECT current_database()").fetchall()
    return name == COMMITTED_COPY


def _has_table(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    query = "SELECT count(*) FROM information_schema.tables WHERE table_name = ?"
    [(count,)] = con.execute(query, [name]).fetchall()
    return count > 0


def _records(con: duckdb.DuckDBPyConnection, query: str, params=None) -> list[dict]:
    cursor = con.execute(query, params or [])
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _iso(value: datetime) -> str:
    return value.replace(tzinfo=UTC).isoformat()  # stored as naive UTC


def _latest_ingest(con: duckdb.DuckDBPyConnection) -> dict | None:
    if not _has_table(con, "ingests"):
        return None
    rows = _records(con, "SELECT * FROM ingests ORDER BY id DESC LIMIT 1")
    return rows[0] if rows else None


def _version_rows(con: duckdb.DuckDBPyConnection, version: str | None = None) -> list[dict]:
    where = "WHERE version = ?" if version else ""
    query = f"SELECT * FROM dataset_versions {where} ORDER BY created_at DESC, version"
    rows = _records(con, query, [version] if version else [])
    for row in rows:
        row["created_at"] = _iso(row["created_at"])
    return rows


def current_version(settings: Settings) -> str | None:
    """The dataset version the latest ingest produced; None before any ingest."""
    if not settings.duckdb_path.exists():
        return None
    with connect(settings) as con:
        latest = _latest_ingest(con)
    return latest["dataset_version"] if latest else None


def list_versions(settings: Settings) -> list[dict]:
    """Every dataset version, newest first: version, created_at, source, counts, snapshot."""
    if current_version(settings) is None:
        return []
    with connect(settings) as con:
        return _version_rows(con)


def version_info(settings: Settings, version: str | None = None) -> dict:
    """One dataset version's row (the current one by default); NotFound when unknown."""
    version = version or current_version(settings)
    if version is None:
        raise NotFound(NO_DATA)
    with connect(settings) as con:
        rows = _version_rows(con, version)
    if not rows:
        raise NotFound(f"unknown dataset version {version!r} (see `python -m core versions`)")
    return rows[0]


def load_dataset(settings: Settings, version: str | None = None) -> tuple[dict, "pd.DataFrame"]:
    """A dataset version's info and its cleaned rows, read from the Parquet snapshot."""
    import pandas as pd

    info = version_info(settings, version)
    store = Store(settings)
    path = snapshot_path(info["version"])
    try:
        data = store.read_bytes(path)
    except FileNotFoundError as error:
        message = f"snapshot {store.uri(path)} of dataset {info['version']} is missing"
        raise NotFound(message) from error
    return info, pd.read_parquet(io.BytesIO(data))


def status(settings: Settings) -> dict | None:
    """The current dataset version and its counts, or None before any ingest."""
    if current_version(settings) is None:
        return None
    with connect(settings) as con:
        latest = _latest_ingest(con)
        if latest is None:  # no ingest committed since current_version() looked
            return None
        info = _version_rows(con, latest["dataset_version"])[0]
        running = ingest_running(con)
    return {
        "dataset_version": info["version"],
        "created_at": info["created_at"],
        "last_ingest_at": _iso(latest["ingested_at"]),
        "last_source": latest["source"],
        **{name: info[name] for name in COUNT_COLUMNS},
        "ingest_running": running,
    }


def describe(settings: Settings) -> dict:
    """A profile of the current dataset: labels, nulls, top categories, placeholders, rejects."""
    info = status(settings)
    if info is None:
        raise NotFound(NO_DATA)
    with connect(settings) as con:
        return {
            "dataset_version": info["dataset_version"],
            "rows": info["rows"],
            "labelled": info["labelled"],
            "labels": _labels(con),
            "nulls": _nulls(con),
            "top_categories": _top_categories(con),
            "placeholders": {
                "surface_utile_100": info["surface_placeholders"],
                "conso_kwhep_m2_an_0.1": info["conso_placeholders"],
            },
            "rejected": info["rejected"],
            "rejected_by_code": _rejected_by_code(con),
        }


def _labels(con: duckdb.DuckDBPyConnection) -> dict:
    """Count per label A–G, then `none` (no label) and `invalid` (anything else)."""
    valid = ", ".join(f"'{label}'" for label in LABELS)
    rows = con.execute(f"""
        SELECT CASE WHEN etiquette_dpe IN ({valid}) THEN etiquette_dpe
                    WHEN etiquette_dpe IS NULL THEN 'none' ELSE 'invalid' END AS label,
               count(*)
        FROM dpe GROUP BY label
    """).fetchall()
    counts = dict(rows)
    return {label: counts.get(label, 0) for label in (*LABELS, "none", "invalid")}


def _nulls(con: duckdb.DuckDBPyConnection) -> dict:
    names = [snake for _, snake, _ in COLUMNS]
    query = "SELECT " + ", ".join(f"count(*) - count({name})" for name in names) + " FROM dpe"
    [counts] = con.execute(query).fetchall()
    return dict(zip(names, counts, strict=True))


def _top_categories(con: duckdb.DuckDBPyConnection) -> dict:
    top = {}
    for spec in RECORD_FIELDS.values():
        if spec.kind != "category":
            continue
        rows = con.execute(f"""
            SELECT {spec.name}, count(*) AS n FROM dpe WHERE {spec.name} IS NOT NULL
            GROUP BY ALL ORDER BY n DESC, {spec.name} LIMIT {TOP_CATEGORIES}
        """).fetchall()
        top[spec.name] = dict(rows)
    return top


def _rejected_by_code(con: duckdb.DuckDBPyConnection) -> dict:
    """Rejected rows per code (`core.data.validation.ERROR_CODES`), most frequent first: a
    row that fails several checks counts once under each of their codes."""
    if "reject_code" not in _columns(con, "dpe"):  # from before codes: the next ingest adds them
        return {}
    rows = con.execute("""
        SELECT code, count(*) AS n
        FROM (SELECT unnest(list_distinct(string_split(reject_code, '|'))) AS code
              FROM dpe WHERE reject_code IS NOT NULL)
        GROUP BY code ORDER BY n DESC, code
    """).fetchall()
    return dict(rows)
