"""Ingest ADEME « DPE tertiaire » records into DuckDB, cleaned and versioned.

Sources are read by `core.data.csv_source` (a CSV export), `core.data.sources` (JSON API pages) and
`core.data.ademe_api` (the ADEME API). One ingest is one transaction: raw records are upserted
into `raw_dpe` (keyed on `N°DPE`), their cleaned form (`core.data.validation.clean_sql`) into
`dpe`, the resulting dataset version is recorded and its Parquet snapshot written to the
object store before the commit (that bookkeeping is `core.data.dataset_versions`). Any failure
leaves it all as it was; what a killed ingest left behind (a snapshot of a version never
committed, a temporary folder) is removed by the next one.

`preview(settings, source)` tells what an ingest of `source` would add, update and leave
unchanged, without writing anything.
"""

import logging
from contextlib import ExitStack
from pathlib import Path
from typing import TypedDict

import duckdb

from core.config import Settings
from core.data import ademe_api, csv_source, dataset_versions, sources, warehouse
from core.data.schema import COLUMNS, ID_COLUMN, source_columns
from core.data.validation import clean_sql
from core.data.warehouse import literal, quote
from core.errors import DpeError, Unavailable
from core.progress import Progress, no_progress

log = logging.getLogger(__name__)

DUCKDB_MEMORY_LIMIT = "1GB"  # for an ingest's connection (DuckDB's own default: 80 % of RAM)
STAGED = "SELECT * FROM staging"


class IngestResult(TypedDict):
    """What an ingest did; `rows` = distinct records in the source."""

    dataset_version: str
    rows: int
    labelled: int
    duplicates: int
    rejected: int
    added: int
    updated: int
    unchanged: int
    without_id: int
    snapshot: str


class Changes(TypedDict):
    """What an ingest of a source would do to the records already there."""

    added: int
    updated: int
    unchanged: int


class _Source:
    """A source opened for one ingest: a DuckDB relation name and its columns, then, once
    `attach(con)` ran, readable on that connection."""

    def __init__(self, scan: str, columns, label: str, frame=None, csv=None):
        self.scan, self.columns, self.label = scan, list(columns), label
        self.frame, self.csv = frame, csv  # csv: (path, delimiter) for error messages

    def attach(self, con) -> None:
        if self.frame is not None:
            con.register(self.scan, self.frame)

    def raise_read_error(self, error: duckdb.Error) -> None:
        """Raise a DpeError naming the line when `error` is a malformed row of this CSV
        (DuckDB finds them while reading, at any step); other errors are not the input's."""
        if self.csv is not None and "CSV Error" in str(error):
            raise csv_source.csv_error(self.label, error, *self.csv) from error


# --- Staging and merging ------------------------------------------------------------------


def _copy_to_staging(con, records: str) -> str:
    con.execute(f"CREATE TEMP TABLE staging AS {records}")
    return STAGED


def _records(source: _Source, limit: int | None) -> str:
    """SELECT of the source's records as raw_dpe holds them: the 63 official columns, as
    text (NULL for those it lacks), the key trimmed; its first `limit` records if given."""
    key = quote(ID_COLUMN)
    present = source_columns(source.columns)
    select = ", ".join(
        f"NULLIF(trim(CAST({quote(present[official])} AS VARCHAR)), '') AS {key}"
        if official == ID_COLUMN  # the key: stray blanks must not make two records of one
        else f"CAST({quote(present[official])} AS VARCHAR) AS {quote(official)}"
        if official in present
        else f"NULL::VARCHAR AS {quote(official)}"
        for official, _, _ in COLUMNS
    )
    return f"SELECT {select} FROM {source.scan}" + (f" LIMIT {int(limit)}" if limit else "")


def _check_counts(source: _Source, total: int, distinct: int) -> None:
    if total == 0:  # lines follow the header (checked when opened), yet none is a row
        raise csv_source.no_rows_error(f"source {source.label}")
    if distinct == 0:
        raise DpeError(f"source {source.label} has no record with a {ID_COLUMN}")


def _keep_last(con, table: str) -> None:
    """Delete the earlier occurrences of a repeated N°DPE from `table`: pages overlap and
    exports repeat records, the last one is the freshest (rowids follow the source's order)."""
    key = quote(ID_COLUMN)
    con.execute(f"""
        DELETE FROM {table} WHERE rowid IN (
            SELECT rowid FROM {table} WHERE {key} IS NOT NULL
            QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY rowid DESC) > 1)
    """)


def _stage(con, source: _Source, limit: int | None) -> tuple[str, dict]:
    """The source's records (official names, text), one per N°DPE, as a relation for the
    next steps to read, and the counts of what was set aside.

    A source without repeats is read again by each step rather than copied: DuckDB
    parses a CSV faster than it copies one. Repeats need a copy to know which came last.
    """
    key = quote(ID_COLUMN)
    records = _records(source, limit)
    if limit:  # copied, so that every step reads the same first records
        records = _copy_to_staging(con, records)
    total, distinct, without_id = con.execute(
        f"SELECT count(*), count(DISTINCT {key}), count(*) - count({key}) FROM ({records})"
    ).fetchone()
    _check_counts(source, total, distinct)
    duplicates = total - without_id - distinct
    if duplicates:
        if records != STAGED:
            records = _copy_to_staging(con, records)
        _keep_last(con, "staging")
    counts = {"rows": distinct, "duplicates": duplicates, "without_id": without_id}
    return f"(SELECT * FROM ({records}) WHERE {key} IS NOT NULL)", counts


def _stage_into_raw(con, source: _Source, limit: int | None) -> dict:
    """A first ingest's staging: the source's records straight into the empty raw_dpe (the
    source parsed once: the steps after read raw_dpe, which is faster than parsing the file
    again), then those without a key or repeated set aside as `_stage` does."""
    key = quote(ID_COLUMN)
    if limit is None:  # the whole source: rows in any order, so each step uses every core
        _keep_row_order(con, False)
    [(total,)] = con.execute(f"INSERT INTO raw_dpe BY NAME {_records(source, limit)}").fetchall()
    without_id, distinct = con.execute(
        f"SELECT count(*) - count({key}), count(DISTINCT {key}) FROM raw_dpe"
    ).fetchone()
    _check_counts(source, total, distinct)
    duplicates = total - without_id - distinct
    if duplicates and limit is None:  # which came last needs the source's order: read again
        con.execute("DELETE FROM raw_dpe")
        _keep_row_order(con, True)
        con.execute(f"INSERT INTO raw_dpe BY NAME {_records(source, limit)}")
    if without_id:
        con.execute(f"DELETE FROM raw_dpe WHERE {key} IS NULL")
    if duplicates:
        _keep_last(con, "raw_dpe")
    return {"rows": distinct, "duplicates": duplicates, "without_id": without_id}


def _keep_row_order(con, keep: bool) -> None:
    """Whether DuckDB keeps rows in the order read. Within the ingest's memory limit, an
    insert or a COPY that keeps it runs on one core; rowids follow the source's order only
    when it does. The snapshot is written in key order either way (`record_version`)."""
    con.execute(f"SET preserve_insertion_order = {str(keep).lower()}")


def _changes(con, incoming: str, dpe: str = "dpe") -> Changes:
    """Clean `incoming` into `incoming_clean` and list in `changed` the records whose
    cleaned content differs from `dpe`'s: re-ingesting a record changes nothing."""
    con.execute(f"CREATE TEMP TABLE incoming_clean AS {_cleaned(incoming)}")
    con.execute(f"""
        CREATE TEMP TABLE changed AS
        SELECT i.n_dpe, d.n_dpe IS NULL AS is_new
        FROM incoming_clean i LEFT JOIN {dpe} d ON d.n_dpe = i.n_dpe
        WHERE d.row_hash IS DISTINCT FROM i.row_hash
    """)
    added, updated, total = con.execute("""
        SELECT count(*) FILTER (WHERE is_new), count(*) FILTER (WHERE NOT is_new),
               (SELECT count(*) FROM incoming_clean)
        FROM changed
    """).fetchone()
    return {"added": added, "updated": updated, "unchanged": total - added - updated}


def _cleaned(table: str) -> str:
    """SELECT of `table`'s records cleaned (`clean_sql`), each with its `row_hash`: DuckDB's
    hash of the cleaned row, so the same record hashes the same whatever its source's
    format. Stable for a given DuckDB release (pinned), and cheap."""
    return f"SELECT c.*, {_row_hash('c')} AS row_hash FROM ({clean_sql(table)}) c"


def _row_hash(alias: str) -> str:
    """The digest of a cleaned row, as `hash(alias)` of the row gives it without
    `reject_code`: the codes restate `reject_reason`, and records hashed before they
    existed keep their digest (so an unchanged source keeps its dataset version)."""
    columns = [snake for _, snake, _ in COLUMNS]
    columns += [name for name in warehouse.CLEAN_EXTRA_COLUMNS if name != "reject_code"]
    return f"hash(struct_pack({', '.join(f'{name} := {alias}.{name}' for name in columns)}))"


def _merge(con, settings: Settings, source: str, incoming: str, counts, progress) -> IngestResult:
    """Upsert the `incoming` records into raw_dpe and dpe; record this ingest and the
    dataset version, with its snapshot."""
    key = quote(ID_COLUMN)
    progress(0.3, "cleaning")
    changes = _changes(con, incoming)
    progress(0.6, "merging")
    # When every record changed (a first ingest), skip the filter: it costs a join.
    everything = changes["added"] + changes["updated"] == counts["rows"]
    con.execute(f"""
        DELETE FROM raw_dpe WHERE {key} IN (SELECT n_dpe FROM changed WHERE NOT is_new);
        DELETE FROM dpe WHERE n_dpe IN (SELECT n_dpe FROM changed WHERE NOT is_new);
        INSERT INTO raw_dpe BY NAME SELECT * FROM {incoming}
            {"" if everything else f"WHERE {key} IN (SELECT n_dpe FROM changed)"};
        INSERT INTO dpe BY NAME SELECT * FROM incoming_clean
            {"" if everything else "WHERE n_dpe IN (SELECT n_dpe FROM changed)"};
    """)
    cleaned = dataset_versions.table_counts(con, "incoming_clean")
    return _record(con, settings, source, counts, changes, cleaned, progress)


def _first(con, settings: Settings, source: _Source, limit, progress) -> IngestResult:
    """The first ingest into an empty warehouse: every record is new, so nothing is
    compared, and the source is read once, into raw_dpe, which `dpe` is cleaned from."""
    counts = _stage_into_raw(con, source, limit)
    progress(0.5, "cleaning")
    con.execute(f"INSERT INTO dpe BY NAME {_cleaned('raw_dpe')}")
    changes = Changes(added=counts["rows"], updated=0, unchanged=0)
    cleaned = dataset_versions.table_counts(con, "dpe")
    return _record(con, settings, source.label, counts, changes, cleaned, progress)


def _record(con, settings, source: str, counts, changes: Changes, cleaned, progress):
    """Record the dataset version `dpe` now holds (its snapshot written) and this ingest."""
    progress(0.8, "writing the dataset snapshot")
    version, snapshot = dataset_versions.record_version(con, settings, source)
    result = IngestResult(
        dataset_version=version,
        rows=counts["rows"],
        labelled=cleaned["labelled"],
        duplicates=counts["duplicates"],
        rejected=cleaned["rejected"],
        added=changes["added"],
        updated=changes["updated"],
        unchanged=changes["unchanged"],
        without_id=counts["without_id"],
        snapshot=snapshot,
    )
    dataset_versions.record_ingest(con, source, result)
    return result


def _is_empty(con) -> bool:
    """Whether the warehouse holds no record yet (before a first ingest)."""
    [(rows,)] = con.execute("SELECT count(*) FROM (SELECT 1 FROM raw_dpe LIMIT 1)").fetchall()
    return rows == 0


def _attach_records(con, settings: Settings) -> str:
    """The table of the records already ingested, read-only on `con` (an empty one before
    any ingest)."""
    if warehouse.current_version(settings) is None:
        con.execute("CREATE TEMP TABLE no_dpe (n_dpe VARCHAR, row_hash UBIGINT)")
        return "no_dpe"
    try:
        con.execute(f"ATTACH {literal(str(settings.duckdb_path))} AS stored (READ_ONLY)")
    except duckdb.Error as error:
        log.debug("preview: database not readable: %s", error)
        raise Unavailable(warehouse.BUSY) from error
    return "stored.dpe"


# --- Ingest -----------------------------------------------------------------------------------


def _remove_database(path: Path) -> None:
    for file in (path, path.with_name(path.name + ".wal")):
        file.unlink(missing_ok=True)


def _in_transaction(settings: Settings, work):
    """Run `work(con)` in one transaction: all of it lands, or nothing does."""
    created = not settings.duckdb_path.exists()
    opened = False
    try:
        with warehouse.connect(settings, read_only=False) as con:
            opened = True
            warehouse.create_tables(con)
            dataset_versions.remove_leftovers(con, settings)
            con.begin()
            try:
                result = work(con)
            except BaseException:
                con.rollback()
                try:  # the snapshot of the version just rolled back, if written
                    dataset_versions.remove_leftovers(con, settings)
                except Exception:  # never hide why the ingest failed
                    log.exception("leftovers of the failed ingest not removed")
                raise
            con.commit()
            (settings.home / dataset_versions.PENDING_SNAPSHOT).unlink(missing_ok=True)
            warehouse.write_committed(con, settings)
            return result
    except BaseException:
        if created and opened:  # a failed first ingest leaves no database, as before it
            _remove_database(settings.duckdb_path)
        raise


def _open_source(settings, source: str, limit, progress: Progress, stack) -> _Source:
    """The source as a DuckDB relation; API records are fetched first (half the progress)."""
    kind = sources.source_kind(source)
    if kind == "api":
        fetched = ademe_api.fetch_api(
            source, limit or settings.ingest_limit, settings, lambda f, m: progress(f / 2, m)
        )
        return _records_source(fetched, source)
    label = str(Path(source).resolve())
    if kind == "json":
        return _records_source(sources.read_json_pages(Path(source)), label)
    progress(0.0, "checking the file's encoding")  # all of it is decoded: ~0.5 s for 500 MB
    path = stack.enter_context(csv_source.utf8_csv_file(source, label))
    scan, columns, delimiter = csv_source.csv_scan(path, label)
    if not csv_source.has_data_lines(path):
        raise DpeError(f"source {label} holds no record after its header")
    return _Source(scan, columns, label, csv=(path, delimiter))


def _records_source(records: list[dict], label: str) -> _Source:
    if not records:
        raise DpeError(f"source {label} has no records")
    frame = sources.records_frame(records)
    return _Source("source_frame", frame.columns, label, frame=frame)


def ingest(
    settings: Settings,
    source: str | Path | None = None,
    limit: int | None = None,
    progress: Progress | None = None,
) -> IngestResult:
    """Load a source into the database; returns its counts and the new dataset version.

    `source`: a CSV file, a JSON page file or folder, or an API URL (default
    `Settings.source`). `limit`: at most that many records (API default
    `Settings.ingest_limit`; files default to all of them). `progress(fraction, message)`
    follows the steps: API pages fetched, staging, cleaning, merging, snapshot.
    """
    progress = progress or no_progress
    source = str(source or settings.source)
    with ExitStack() as stack:
        opened = _open_source(settings, source, limit, progress, stack)
        if ID_COLUMN not in source_columns(opened.columns):
            raise DpeError(f"source {opened.label} has no {ID_COLUMN} column (the record key)")
        start = 0.5 if source.startswith(("http://", "https://")) else 0.0  # fetched: half

        def step(fraction: float, message: str) -> None:
            progress(start + (1 - start) * fraction, message)

        def work(con) -> IngestResult:
            # Past this, DuckDB spills to disk: a million records stay well under 2 GB.
            con.execute(f"SET memory_limit = '{DUCKDB_MEMORY_LIMIT}'")
            opened.attach(con)
            step(0.1, "reading the source")
            try:
                if _is_empty(con):
                    result = _first(con, settings, opened, limit, step)
                else:
                    incoming, counts = _stage(con, opened, limit)
                    result = _merge(con, settings, opened.label, incoming, counts, step)
            except duckdb.Error as error:
                opened.raise_read_error(error)
                raise
            step(1.0, f"dataset version {result['dataset_version']}")
            return result

        return _in_transaction(settings, work)


def preview(settings: Settings, source: str | Path, limit: int | None = None) -> Changes:
    """How many of the source's records an ingest would add, update (a record with that
    N°DPE exists, with other content) and leave unchanged. Writes nothing."""
    with ExitStack() as stack, duckdb.connect() as con:
        opened = _open_source(settings, str(source), limit, no_progress, stack)
        if ID_COLUMN not in source_columns(opened.columns):
            raise DpeError(f"source {opened.label} has no {ID_COLUMN} column (the record key)")
        opened.attach(con)
        dpe = _attach_records(con, settings)
        try:
            incoming, _ = _stage(con, opened, limit)
            return _changes(con, incoming, dpe)
        except duckdb.Error as error:
            opened.raise_read_error(error)
            raise
