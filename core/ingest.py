"""Ingest ADEME « DPE tertiaire » records into DuckDB, cleaned and versioned.

Sources: an ADEME CSV export (`,` or `;`, UTF-8 or cp1252, decimal point or comma), a JSON
file or folder of ADEME API pages, or the ADEME data-fair API itself (cursor pages).
One ingest is one transaction: raw records are upserted into `raw_dpe` (keyed on `N°DPE`),
their cleaned form into `dpe`, the resulting dataset version is recorded and its Parquet
snapshot written to the object store before the commit. Any failure leaves it all as it was.

Cleaning is one SQL query (`clean_sql`), run by DuckDB over the whole source at ingest and
over a DataFrame by `clean()`: bulk data never goes row by row through pydantic, and the
checks are derived from `core.schema.RECORD_FIELDS`, like the pydantic `BuildingRecord`.
"""

import codecs
import csv
import json
import logging
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import httpx
import pandas as pd
from tqdm import tqdm

from core import warehouse
from core.config import Settings
from core.errors import DpeError
from core.schema import (
    COLUMNS,
    ID_COLUMN,
    LABEL_COLUMN,
    LABELS,
    OFFICIAL_TO_SNAKE,
    RECORD_FIELDS,
    SNAKE_TO_OFFICIAL,
)
from core.storage import Store
from core.warehouse import quote

log = logging.getLogger(__name__)

API_PAGE_SIZE = 1000  # records per API page; the shared pages were pulled with 100 to 500
MAX_RETRY_AFTER_S = 60.0  # never wait longer than this on a server's Retry-After
SNIFF_BYTES = 64 * 1024
CHUNK_BYTES = 1 << 20
DUCKDB_MEMORY_LIMIT = "1GB"  # for an ingest's connection (DuckDB's own default: 80 % of RAM)
SURFACE_PLACEHOLDER = 100.0  # m², typed in by diagnosticians who did not know the surface
CONSO_PLACEHOLDER = 0.1  # kWhEP/m²/an, on « vierge »-like records labelled A


# --- Source detection ---------------------------------------------------------------------


def _head(source: str | Path | bytes, name: str) -> bytes:
    """The first bytes of a file (or of the bytes given), checked to be non-empty text."""
    if isinstance(source, bytes):
        head = source[:SNIFF_BYTES]
    elif not Path(source).exists():
        raise DpeError(f"source {name} does not exist")
    elif not Path(source).is_file():
        raise DpeError(f"source {name} is not a file")
    else:
        with open(source, "rb") as file:
            head = file.read(SNIFF_BYTES)
    if not head.strip():
        raise DpeError(f"source {name} is empty")
    if b"\x00" in head:
        raise DpeError(f"source {name} is a binary file, not a CSV or JSON file")
    return head


def source_kind(source: str) -> str:
    """'api' for an http(s) URL, else 'json' or 'csv' by the file's content."""
    if source.startswith(("http://", "https://")):
        return "api"
    if Path(source).is_dir():
        return "json"
    first = _head(source, source).lstrip(codecs.BOM_UTF8 + b" \t\r\n")[:1]
    return "json" if first in (b"{", b"[") else "csv"


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


# --- CSV ------------------------------------------------------------------------------------


def _is_utf8(path: Path, name: str) -> bool:
    """Whether the file is UTF-8; DpeError if it holds a NUL byte anywhere: text never does,
    and DuckDB would read it into the values."""
    decoder, utf8, offset = codecs.getincrementaldecoder("utf-8")(), True, 0
    with open(path, "rb") as file:
        while chunk := file.read(CHUNK_BYTES):
            if (nul := chunk.find(b"\x00")) >= 0:
                raise DpeError(
                    f"source {name} is a binary file, not a CSV: a NUL byte at byte {offset + nul}"
                )
            offset += len(chunk)
            utf8 = utf8 and _decodes(decoder, chunk)
    return utf8 and _decodes(decoder, b"", final=True)


def _decodes(decoder, data: bytes, final: bool = False) -> bool:
    try:
        decoder.decode(data, final)
    except UnicodeDecodeError:
        return False
    return True


def _transcode_cp1252(source: Path, target: Path, name: str) -> None:
    # cp1252, not latin-1: ADEME's texts hold ’ and – which only cp1252 maps.
    try:
        with (
            open(source, encoding="cp1252", newline="") as src,
            open(target, "w", encoding="utf-8", newline="") as dst,
        ):
            while chunk := src.read(CHUNK_BYTES):
                dst.write(chunk)
    except UnicodeDecodeError as error:
        raise DpeError(f"{name} is neither UTF-8 nor cp1252 text: {error.reason}") from error


@contextmanager
def _utf8_csv_file(source: str | Path | bytes, name: str):
    """`source` (a path, or the bytes of a file) as a UTF-8 file on disk DuckDB can scan."""
    with tempfile.TemporaryDirectory(prefix="dpe-csv-") as tmp:
        path = Path(tmp) / "upload.csv" if isinstance(source, bytes) else Path(source)
        if isinstance(source, bytes):
            path.write_bytes(source)
        if not _is_utf8(path, name):
            utf8 = Path(tmp) / "utf8.csv"
            _transcode_cp1252(path, utf8, name)
            path = utf8
        yield path


def _csv_header(path: Path, name: str) -> tuple[list[str], str]:
    """The CSV's column names and delimiter: `;`, `,` or tab, whichever the header line
    holds most (ADEME column names hold none of them)."""
    with open(path, encoding="utf-8-sig", newline="") as file:
        first_line = file.readline()
        delimiter = max((";", ",", "\t"), key=first_line.count)
        file.seek(0)
        names = next(csv.reader(file, delimiter=delimiter), [])
    if not any(names):
        raise DpeError(f"{name} is empty: no header line")
    if len(set(names)) < len(names):
        raise DpeError(f"{name}: a column name appears twice in the header")
    return names, delimiter


def _csv_scan(path: Path, name: str) -> tuple[str, list[str]]:
    """A DuckDB table function reading the CSV with every column as text, and its columns.

    The dialect is set, not sniffed: sniffing could take `#` for a comment, and a set
    dialect gets errors that name the line at fault.
    """
    names, delimiter = _csv_header(path, name)
    columns = ", ".join(f"{_literal(column)}: 'VARCHAR'" for column in names)
    scan = (
        f"read_csv({_literal(str(path))}, auto_detect = false, header = true, "
        f"columns = {{{columns}}}, delim = {_literal(delimiter)}, quote = '\"', escape = '\"')"
    )
    return scan, names


def _csv_error(name: str, error: duckdb.Error) -> DpeError:
    """One line from DuckDB's long CSV error: where and what, without its tips or the data."""
    kept = []
    for line in str(error).splitlines():
        if line.startswith("Possible fixes"):
            break
        if line.strip() and not line.startswith("Original Line"):
            kept.append(line.strip())
    return DpeError(f"{name} is not a readable CSV: {' '.join(kept)}")


def read_csv(source: str | Path | bytes, name: str | None = None) -> pd.DataFrame:
    """Read a CSV (a path or a file's bytes) as text columns named as in its header.

    `,` `;` or tab separated, UTF-8 or cp1252; empty cells are missing values. Column
    names may be the official ADEME ones or snake_case: `clean()` accepts both.
    """
    with csv_table(source, name) as table:
        return table.frame()


@dataclass
class CsvTable:
    """A CSV open in DuckDB for a `with csv_table(...)` block: every column as text."""

    connection: duckdb.DuckDBPyConnection
    scan: str  # a table function reading the file, for queries on the connection
    columns: list[str]  # as named in the header
    name: str  # what error messages call the file

    def frame(self, columns: list[str] | None = None) -> pd.DataFrame:
        """The rows, with all the columns or the ones given (in that order)."""
        if columns == []:  # no columns, but as many rows
            [(rows,)] = self.query(f"SELECT count(*) FROM {self.scan}").fetchall()
            return pd.DataFrame(index=range(rows))
        selected = "*" if columns is None else ", ".join(quote(c) for c in columns)
        return self.query(f"SELECT {selected} FROM {self.scan}").df()

    def query(self, sql: str) -> duckdb.DuckDBPyConnection:
        """Run `sql` (which reads `scan`); a malformed row is a DpeError naming its line."""
        try:
            return self.connection.execute(sql)
        except duckdb.Error as error:
            raise _csv_error(self.name, error) from error


@contextmanager
def csv_table(source: str | Path | bytes, name: str | None = None) -> Iterator[CsvTable]:
    """A CSV (a path or a file's bytes) open in DuckDB for the block, as `read_csv` reads
    it: for work that does not need every column in pandas."""
    name = name or ("uploaded CSV" if isinstance(source, bytes) else str(source))
    _head(source, name)
    with _utf8_csv_file(source, name) as path, duckdb.connect() as con:
        scan, columns = _csv_scan(path, name)
        yield CsvTable(con, scan, columns, name)


# --- JSON pages and the ADEME API ----------------------------------------------------------


def _parse_json(text: str, where: str):
    try:
        # Numbers keep their source text: raw records are stored as text, unchanged.
        return json.loads(text, parse_float=str, parse_int=str)
    except json.JSONDecodeError as error:
        raise DpeError(f"{where} is not valid JSON (truncated?): {error}") from error


def _page_records(page, where: str) -> list[dict]:
    """Records of one API page: `{"total", "next", "results": [...]}` or a bare list."""
    records = page.get("results") if isinstance(page, dict) else page
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise DpeError(f"{where} is not an ADEME API page (a list of records or `results`)")
    return records


def _read_json_pages(path: Path) -> list[dict]:
    files = sorted(path.glob("*.json")) if path.is_dir() else [path]
    if not files:
        raise DpeError(f"source {path} holds no .json file")
    records = []
    for file in files:
        try:
            text = file.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError as error:
            raise DpeError(f"{file} is not UTF-8 JSON: {error.reason}") from error
        records.extend(_page_records(_parse_json(text, str(file)), str(file)))
    return records


def _retry_delay(response: httpx.Response | None, attempt: int, settings: Settings) -> float:
    retry_after = response.headers.get("Retry-After", "") if response is not None else ""
    if retry_after.replace(".", "", 1).isdigit():
        return min(float(retry_after), MAX_RETRY_AFTER_S)
    return settings.http_backoff_s * 2**attempt


def _get_page(client: httpx.Client, url: str, settings: Settings):
    """One API page, retried with exponential backoff on 429, 5xx and network failures."""
    attempts = settings.http_retries + 1
    for attempt in range(attempts):
        response = None
        try:
            response = client.get(url)
        except httpx.TransportError as error:
            problem = f"unreachable: {_first_line(error)}"
        else:
            if response.status_code == 429 or response.status_code >= 500:
                problem = f"answered HTTP {response.status_code}"
            elif response.status_code >= 400:
                raise DpeError(f"ADEME API {url} answered HTTP {response.status_code}")
            else:
                return _parse_json(response.text, f"ADEME API page {url}")
        if attempt + 1 < attempts:
            delay = _retry_delay(response, attempt, settings)
            log.warning("ADEME API %s; retrying in %.1f s", problem, delay)
            time.sleep(delay)
    tries = f"{attempts} attempt" + ("s" if attempts > 1 else "")
    raise DpeError(f"ADEME API {url} {problem} ({tries})")


def _fetch_api(url: str, limit: int, settings: Settings, progress: bool) -> list[dict]:
    """Records from the ADEME data-fair API, following `next` cursors up to `limit`."""
    first = httpx.URL(url)
    if "size" not in first.params:
        first = first.copy_merge_params({"size": min(limit, API_PAGE_SIZE)})
    records: list[dict] = []
    page_url = str(first)
    with (
        httpx.Client(timeout=settings.http_timeout_s, follow_redirects=True) as client,
        tqdm(
            total=limit, desc="ADEME API", unit="rec", file=sys.stderr, disable=not progress
        ) as bar,
    ):
        while page_url and len(records) < limit:
            page = _get_page(client, page_url, settings)
            batch = _page_records(page, f"ADEME API page {page_url}")[: limit - len(records)]
            if not batch:
                break
            records.extend(batch)
            bar.update(len(batch))
            page_url = page.get("next") if isinstance(page, dict) else None
    return records


def _as_text(value):
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value, ensure_ascii=False)  # a nested object or list


def _records_frame(records: list[dict]) -> pd.DataFrame:
    return pd.DataFrame.from_records(
        [{key: _as_text(value) for key, value in record.items()} for record in records]
    )


# --- Cleaning -------------------------------------------------------------------------------


def _source_columns(columns) -> dict[str, str]:
    """official name -> the source's column holding it (official or snake_case name)."""
    found = {}
    for column in columns:
        official = column if column in OFFICIAL_TO_SNAKE else SNAKE_TO_OFFICIAL.get(column)
        if official and (official not in found or column == official):
            found[official] = column
    return found


def _number_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _sql_number(expr: str) -> str:
    """A number as it reads best in a reason: 100 rather than 100.0."""
    return (
        f"CASE WHEN {expr} = trunc({expr}) AND abs({expr}) < 1e15 "
        f"THEN CAST(CAST({expr} AS BIGINT) AS VARCHAR) ELSE CAST({expr} AS VARCHAR) END"
    )


def _reason_sql(spec) -> str:
    """Why a number field's value is rejected (NULL when it is valid)."""
    value, text = spec.name, f"_text_{spec.name}"
    prefix = _literal(spec.official + "=")
    shown = f"{prefix} || {_sql_number(value)}"
    # In SQL '''' is one quote: Surface_utile='abc' is not a number
    whens = [
        f"WHEN {text} IS NOT NULL AND {value} IS NULL "
        f"THEN {prefix} || '''' || {text} || ''' is not a number'"
    ]
    if spec.kind == "integer":
        whens.append(f"WHEN {value} <> trunc({value}) THEN {shown} || ' is not an integer'")
    if spec.min is not None:
        bound = _number_text(spec.min)
        op, rule = ("<=", ">") if spec.min_exclusive else ("<", ">=")
        whens.append(f"WHEN {value} {op} {bound} THEN {shown} || ' must be {rule} {bound}'")
    if spec.max is not None:
        bound = _number_text(spec.max)
        whens.append(f"WHEN {value} > {bound} THEN {shown} || ' must be <= {bound}'")
    return f"CASE {' '.join(whens)} END"


def clean_sql(table: str) -> str:
    """SELECT cleaning `table` (the 63 official columns, as text) into the 63 typed
    snake_case columns + reject_reason + placeholder flags."""
    checked = [spec for spec in RECORD_FIELDS.values() if spec.kind in ("number", "integer")]
    text = ", ".join(
        f"NULLIF(trim(CAST({quote(official)} AS VARCHAR)), '') AS {snake}"
        for official, snake, _ in COLUMNS
    )
    typed = []
    for _, snake, kind in COLUMNS:
        number = f"TRY_CAST(replace({snake}, ',', '.') AS DOUBLE)"  # decimal comma or point
        typed.append(
            {
                "string": snake,
                "number": number,
                "integer": number,  # made an integer below, once checked
                "date": f"COALESCE(TRY_CAST({snake} AS DATE), "
                f"TRY_CAST(try_strptime({snake}, '%d/%m/%Y') AS DATE))",
            }[kind]
            + f" AS {snake}"
        )
    typed += [f"{spec.name} AS _text_{spec.name}" for spec in checked]
    final = [
        f"CASE WHEN {snake} = trunc({snake}) THEN TRY_CAST({snake} AS BIGINT) END AS {snake}"
        if kind == "integer"
        else snake
        for _, snake, kind in COLUMNS
    ]
    label, valid = OFFICIAL_TO_SNAKE[LABEL_COLUMN], ", ".join(_literal(x) for x in LABELS)
    reasons = [
        f"CASE WHEN {label} NOT IN ({valid}) "
        f"THEN {_literal(LABEL_COLUMN + '=')} || '''' || {label} || ''' is not a class A–G' END"
    ] + [_reason_sql(spec) for spec in checked]
    final += [
        f"NULLIF(concat_ws('; ', {', '.join(reasons)}), '') AS reject_reason",
        f"coalesce(surface_utile = {SURFACE_PLACEHOLDER}, false) AS surface_placeholder",
        f"coalesce(conso_kwhep_m2_an = {CONSO_PLACEHOLDER}, false) AS conso_placeholder",
    ]
    return (
        f"SELECT {', '.join(final)} FROM (SELECT {', '.join(typed)} "
        f"FROM (SELECT {text} FROM {table}))"
    )


def _text_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The 63 official columns as text: the frame's (by either name), or missing values."""
    columns = _source_columns(frame.columns)
    missing = pd.Series(pd.NA, index=frame.index, dtype="string")
    return pd.DataFrame(
        {
            official: frame[columns[official]].astype("string") if official in columns else missing
            for official, _, _ in COLUMNS
        },
        index=frame.index,
    )


def clean(frame: pd.DataFrame) -> pd.DataFrame:
    """Typed snake_case columns (all 63), `reject_reason` (missing when valid) and the
    placeholder flags, one row per input row, same index. Input columns may be official
    ADEME names or snake_case, text or typed; unknown columns are left out."""
    text = _text_frame(frame)
    with duckdb.connect() as con:
        con.register("records", text)
        cleaned = con.execute(clean_sql("records")).df()
    cleaned.index = frame.index
    return cleaned


# --- Ingest ---------------------------------------------------------------------------------


STAGED = "SELECT * FROM staging"


def _copy_to_staging(con, records: str) -> str:
    con.execute(f"CREATE TEMP TABLE staging AS {records}")
    return STAGED


def _stage(con, scan: str, columns, source: str, limit: int | None) -> tuple[str, dict]:
    """The source's records (official names, text), one per N°DPE, as a relation for the
    next steps to read, and the counts of what was set aside.

    A source without repeats is read again by each step rather than copied: DuckDB
    parses a CSV faster than it copies one. Repeats need a copy to know which came last.
    """
    key = quote(ID_COLUMN)
    present = _source_columns(columns)
    select = ", ".join(
        f"NULLIF(trim(CAST({quote(present[official])} AS VARCHAR)), '') AS {key}"
        if official == ID_COLUMN  # the key: stray blanks must not make two records of one
        else f"CAST({quote(present[official])} AS VARCHAR) AS {quote(official)}"
        if official in present
        else f"NULL::VARCHAR AS {quote(official)}"
        for official, _, _ in COLUMNS
    )
    records = f"SELECT {select} FROM {scan}"
    try:
        if limit:  # copied, so that every step reads the same first records
            records = _copy_to_staging(con, f"{records} LIMIT {int(limit)}")
        total, distinct, without_id = con.execute(
            f"SELECT count(*), count(DISTINCT {key}), count(*) - count({key}) FROM ({records})"
        ).fetchone()
    except duckdb.Error as error:
        raise _csv_error(source, error) from error
    if distinct == 0:
        raise DpeError(f"source {source} has no record with a {ID_COLUMN}")
    duplicates = total - without_id - distinct
    if duplicates:
        if records != STAGED:
            records = _copy_to_staging(con, records)
        # Pages overlap and exports repeat records: keep the last occurrence, the freshest
        # (a copy's rowid follows the source's order).
        con.execute(f"""
            DELETE FROM staging WHERE rowid IN (
                SELECT rowid FROM staging WHERE {key} IS NOT NULL
                QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY rowid DESC) > 1)
        """)
    counts = {"rows": distinct, "duplicates": duplicates, "without_id": without_id}
    return f"(SELECT * FROM ({records}) WHERE {key} IS NOT NULL)", counts


def _merge(con, settings: Settings, source: str, incoming: str, counts: dict, steps) -> dict:
    """Upsert the `incoming` records into raw_dpe and dpe; record this ingest and the
    dataset version, with its snapshot. Returns the ingest's counts."""
    key = quote(ID_COLUMN)
    steps.set_description("ingest: cleaning")
    steps.update()
    # DuckDB's hash of the cleaned row: the same record hashes the same whatever its
    # source's format. Stable for a given DuckDB release (pinned), and cheap.
    con.execute(f"""
        CREATE TEMP TABLE incoming_clean AS
        SELECT c.*, hash(c) AS row_hash FROM ({clean_sql(incoming)}) c
    """)
    steps.set_description("ingest: merging")
    steps.update()
    # Only records whose cleaned content changed are replaced: re-ingesting adds nothing.
    con.execute("""
        CREATE TEMP TABLE changed AS
        SELECT i.n_dpe, d.n_dpe IS NULL AS is_new
        FROM incoming_clean i LEFT JOIN dpe d ON d.n_dpe = i.n_dpe
        WHERE d.row_hash IS DISTINCT FROM i.row_hash
    """)
    added, updated = con.execute(
        "SELECT count(*) FILTER (WHERE is_new), count(*) FILTER (WHERE NOT is_new) FROM changed"
    ).fetchone()
    # When every record changed (a first ingest), skip the filter: it costs a join.
    everything = added + updated == counts["rows"]
    con.execute(f"""
        DELETE FROM raw_dpe WHERE {key} IN (SELECT n_dpe FROM changed WHERE NOT is_new);
        DELETE FROM dpe WHERE n_dpe IN (SELECT n_dpe FROM changed WHERE NOT is_new);
        INSERT INTO raw_dpe BY NAME SELECT * FROM {incoming}
            {"" if everything else f"WHERE {key} IN (SELECT n_dpe FROM changed)"};
        INSERT INTO dpe BY NAME SELECT * FROM incoming_clean
            {"" if everything else "WHERE n_dpe IN (SELECT n_dpe FROM changed)"};
    """)
    cleaned = _counts(con, "incoming_clean")
    steps.set_description("ingest: snapshot")
    steps.update()
    version, snapshot = _record_version(con, settings, source)
    result = {
        "dataset_version": version,
        "rows": counts["rows"],
        "labelled": cleaned["labelled"],
        "duplicates": counts["duplicates"],
        "rejected": cleaned["rejected"],
        "added": added,
        "updated": updated,
        "without_id": counts["without_id"],
        "snapshot": snapshot,
    }
    _record_ingest(con, source, result)
    return result


def _counts(con, table: str) -> dict:
    valid = ", ".join(_literal(label) for label in LABELS)
    row = con.execute(f"""
        SELECT count(*), count(*) FILTER (WHERE etiquette_dpe IN ({valid})),
               count(*) FILTER (WHERE reject_reason IS NOT NULL),
               count(*) FILTER (WHERE surface_placeholder),
               count(*) FILTER (WHERE conso_placeholder)
        FROM {table}
    """).fetchone()
    return dict(zip(warehouse.COUNT_COLUMNS, row, strict=True))


def _record_version(con, settings: Settings, source: str) -> tuple[str, str]:
    """The dataset version of `dpe` as it now stands: recorded, its snapshot in the store.

    The version hashes the sorted row digests, so it does not depend on row order nor on
    the source's format: the same records from a CSV or from API pages give the same one.
    """
    query = "SELECT md5(string_agg(CAST(row_hash AS VARCHAR), ',' ORDER BY row_hash)) FROM dpe"
    version = con.execute(query).fetchone()[0][:16]
    store = Store(settings)
    path = f"datasets/{version}.parquet"
    if not store.exists(path):  # same version, same content: written once
        settings.home.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="dpe-snapshot-", dir=settings.home) as tmp:
            local = Path(tmp) / "snapshot.parquet"
            con.execute(f"""
                COPY (SELECT * EXCLUDE (row_hash) FROM dpe)
                TO {_literal(str(local))} (FORMAT parquet)
            """)
            store.put_file(local, path)
    counts = _counts(con, "dpe")
    con.execute(
        f"""
        INSERT INTO dataset_versions (version, created_at, source, {", ".join(counts)}, snapshot)
        VALUES (?, ?, ?, {", ".join("?" * len(counts))}, ?) ON CONFLICT DO NOTHING
        """,
        [version, _now(), source, *counts.values(), store.uri(path)],
    )
    return version, store.uri(path)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)  # stored as naive UTC


def _record_ingest(con, source: str, result: dict) -> None:
    columns = ("rows", "labelled", "duplicates", "rejected", "added", "updated")
    con.execute(
        f"""
        INSERT INTO ingests (id, ingested_at, source, dataset_version, {", ".join(columns)})
        SELECT coalesce(max(id), 0) + 1, ?, ?, ?, {", ".join("?" * len(columns))} FROM ingests
        """,
        [_now(), source, result["dataset_version"], *(result[c] for c in columns)],
    )


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
            con.begin()
            try:
                result = work(con)
            except BaseException:
                con.rollback()
                raise
            con.commit()
            return result
    except BaseException:
        if created and opened:  # a failed first ingest leaves no database, as before it
            _remove_database(settings.duckdb_path)
        raise


def ingest(
    settings: Settings,
    source: str | Path | None = None,
    limit: int | None = None,
    progress: bool = True,
) -> dict:
    """Load a source into the database; returns its counts and the new dataset version.

    `source`: a CSV file, a JSON page file or folder, or an API URL (default
    `Settings.source`). `limit`: at most that many records (API default
    `Settings.ingest_limit`; files default to all of them). Progress goes to stderr.
    """
    source = str(source or settings.source)
    kind = source_kind(source)
    if kind == "api":
        records = _fetch_api(source, limit or settings.ingest_limit, settings, progress)
        return _load_records(settings, records, source, limit, progress)
    label = str(Path(source).resolve())
    if kind == "json":
        return _load_records(settings, _read_json_pages(Path(source)), label, limit, progress)
    with _utf8_csv_file(source, label) as path:
        scan, columns = _csv_scan(path, label)
        return _load(settings, scan, columns, label, limit, progress)


def _load_records(settings, records: list[dict], source: str, limit, progress) -> dict:
    if not records:
        raise DpeError(f"source {source} has no records")
    frame = _records_frame(records)
    return _load(settings, "source_frame", frame.columns, source, limit, progress, frame)


def _load(settings, scan: str, columns, source: str, limit, progress, frame=None) -> dict:
    """In one transaction, stage the source (a table function, or `frame` registered
    under the name `scan`) and merge it."""
    if ID_COLUMN not in _source_columns(columns):
        raise DpeError(f"source {source} has no {ID_COLUMN} column (the record key)")

    def work(con) -> dict:
        # Past this, DuckDB spills to disk: a million records stay well under 2 GB.
        con.execute(f"SET memory_limit = '{DUCKDB_MEMORY_LIMIT}'")
        if frame is not None:
            con.register(scan, frame)
        with tqdm(total=4, desc="ingest: reading", file=sys.stderr, disable=not progress) as steps:
            warehouse.create_tables(con)
            incoming, counts = _stage(con, scan, columns, source, limit)
            steps.update()
            return _merge(con, settings, source, incoming, counts, steps)

    return _in_transaction(settings, work)


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise ValueError(text)
    return value


def add_cli(subparsers) -> None:
    parser = subparsers.add_parser("ingest", help="load ADEME records; new dataset version")
    parser.add_argument(
        "--source",
        help="ADEME CSV export, JSON API page(s) (file or folder) or API URL "
        "(default: DPE_SOURCE, the ADEME API)",
    )
    parser.add_argument(
        "--limit", type=_positive_int, help="at most N records (API default: DPE_INGEST_LIMIT)"
    )
    parser.set_defaults(run=lambda args, settings: ingest(settings, args.source, args.limit))
