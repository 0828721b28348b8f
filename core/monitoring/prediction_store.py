"""The prediction log as stored: its layout and schema, reading it, and keeping it bounded.

Every prediction (record fields, label, probabilities, model version, source, client, request
id, UTC time) is a row of a Parquet part file in the object store (`Settings.store_uri`: a
local folder or S3), under `predictions/date=YYYY-MM-DD/`. The writer is
`core.monitoring.prediction_log.PredictionLogger`.

Part files rather than a database because every API replica, the workbench and the CLI log
at once, possibly on different machines: each writer adds its own objects, named after its
replica (host, process, a random id) so that two writers never collide, each written whole
(an S3 PUT, or a rename on disk: a reader never sees half a file). Readers read them all.

Bounded: `maintain` merges the part files of each day before yesterday into one (`compact`)
and deletes the days older than the retention (`DPE_LOG_RETENTION_DAYS`, default 90). A lease
object in the store (`LEASE`) keeps two replicas from maintaining the log at once.
"""

import io
import json
import logging
import os
import socket
import time
import uuid
from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from core.config import Settings
from core.data.schema import LABELS, RECORD_FIELDS
from core.storage import Store, store_error

log = logging.getLogger(__name__)

SOURCES = ("api", "app", "batch", "cli")
PREFIX = "predictions"  # the log's folder in the store
LEASE = f"{PREFIX}/.maintenance-lease.json"
LEASE_S = 600.0  # a maintenance that died leaves its lease: others take it after this
MERGED_PARTS = b"dpe.merged_parts"  # a compacted file's metadata: the parts it holds
PROBA_COLUMNS = tuple(f"proba_{label}" for label in LABELS)
LOG_SCHEMA = pa.schema(
    [
        ("time", pa.timestamp("us", tz="UTC")),
        ("source", pa.string()),
        ("model_version", pa.string()),
        ("client", pa.string()),  # who asked (the API: "token:<hash>" or "host:<ip>")
        ("request_id", pa.string()),  # the API request's X-Request-ID
        ("label", pa.string()),
        *[(column, pa.float64()) for column in PROBA_COLUMNS],
        ("error", pa.string()),
        *[
            (name, pa.string() if spec.kind == "category" else pa.float64())
            for name, spec in RECORD_FIELDS.items()
        ],
    ]
)


def replica_id() -> str:
    """This process among all writers of the log: host name, PID and a random part."""
    host = "".join(c if c.isalnum() or c in "-." else "-" for c in socket.gethostname())
    return f"{host}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def write_part(store: Store, table: pa.Table, replica: str) -> str:
    """Write one part file whole, named after its writer: replicas never collide."""
    now = datetime.now(UTC)
    path = f"{PREFIX}/date={now:%Y-%m-%d}/part-{now:%Y%m%dT%H%M%S%f}-{replica}.parquet"
    store.write_bytes(path, parquet_bytes(table))
    return path


def parquet_bytes(table: pa.Table) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


def day_parts(store: Store) -> dict[str, list[str]]:
    """The log's part files by day folder ("date=YYYY-MM-DD")."""
    days: dict[str, list[str]] = {}
    for path in store.list(PREFIX):
        folder, _, name = path.rpartition("/")
        day = folder.rpartition("/")[2]
        if day.startswith("date=") and name.startswith("part-") and name.endswith(".parquet"):
            days.setdefault(day, []).append(path)
    return days


# ---------------------------------------------------------------------------- maintenance


def maintain(
    store: Store, retention_days: int, today: date | None = None, owner: str | None = None
) -> dict:
    """Delete the days older than `retention_days`, then merge the part files of each day
    before yesterday into one (today's and yesterday's may still get a late part). Skipped
    (returns {"skipped": True}) while another writer holds the maintenance lease."""
    today = today or datetime.now(UTC).date()
    owner = owner or replica_id()
    if not _take_lease(store, owner):
        return {"skipped": True}
    try:
        oldest = f"date={today - timedelta(days=retention_days):%Y-%m-%d}"
        settled = f"date={today - timedelta(days=1):%Y-%m-%d}"
        pruned = compacted = 0
        for day, parts in sorted(day_parts(store).items()):
            if day < oldest:
                for part in parts:
                    store.remove(part)
                pruned += 1
            elif day < settled:
                compacted += compact(store, day, parts)
        return {"skipped": False, "pruned_days": pruned, "compacted_days": compacted}
    finally:
        _release_lease(store, owner)


def _take_lease(store: Store, owner: str) -> bool:
    """Write our lease unless another writer's is still valid, then read it back: of two
    writers racing, the one whose lease is read back wins (S3 has no lock; a lost race
    costs at most one merge done twice, which `compact` undoes)."""
    try:
        held = json.loads(store.read_bytes(LEASE))
        if held["owner"] != owner and held["until"] > time.time():
            return False
    except FileNotFoundError:
        pass
    lease = {"owner": owner, "until": time.time() + LEASE_S}
    store.write_bytes(LEASE, json.dumps(lease).encode())
    return json.loads(store.read_bytes(LEASE))["owner"] == owner


def _release_lease(store: Store, owner: str) -> None:
    try:
        if json.loads(store.read_bytes(LEASE))["owner"] == owner:
            store.remove(LEASE)
    except FileNotFoundError:
        pass


def compact(store: Store, day: str, parts: list[str]) -> int:
    """Merge a day's part files into one (1), or leave a day of one file alone (0).

    The merged file is written first, then its parts deleted: a reader meanwhile may count
    a part twice, never miss one. The merged file names its parts in its metadata, so that
    parts a crash left behind are deleted, not merged again, by the next compaction."""
    merged_before = set()
    for path in parts:
        if "-compacted-" in path:
            metadata = pq.read_schema(io.BytesIO(store.read_bytes(path))).metadata or {}
            merged_before |= set(json.loads(metadata.get(MERGED_PARTS, b"[]")))
    for path in sorted(merged_before & set(parts)):
        store.remove(path)
    parts = [path for path in parts if path not in merged_before]
    if len(parts) < 2:
        return 0
    table = pa.concat_tables([_read_part(store, path) for path in parts]).sort_by("time")
    names = json.dumps(parts).encode()
    table = table.replace_schema_metadata({MERGED_PARTS: names})
    store.write_bytes(
        f"{PREFIX}/{day}/part-{day[5:]}-compacted-{uuid.uuid4().hex[:8]}.parquet",
        parquet_bytes(table),
    )
    for path in parts:
        store.remove(path)
    return 1


def _read_part(store: Store, path: str) -> pa.Table:
    """One part file in LOG_SCHEMA (columns it predates, e.g. `client`, are null)."""
    table = pq.read_table(io.BytesIO(store.read_bytes(path)))
    columns = [
        table[name].cast(field.type)
        if name in table.column_names
        else pa.nulls(len(table), field.type)
        for name, field in zip(LOG_SCHEMA.names, LOG_SCHEMA, strict=True)
    ]
    return pa.Table.from_arrays(columns, schema=LOG_SCHEMA)


# ---------------------------------------------------------------------------- reading


def read_predictions(
    settings: Settings,
    since: datetime | None = None,
    until: datetime | None = None,
    source: str | None = None,
    client: str | None = None,
) -> pd.DataFrame:
    """Logged predictions, of every writer, with since <= time < until (from `source` and
    `client` only, when given), oldest first (columns of LOG_SCHEMA)."""
    store = Store(settings)
    for attempt in range(3):
        try:
            return _read(store, since, until, source, client)
        except FileNotFoundError:
            if attempt == 2:  # files vanished under three reads in a row: not compaction
                raise
            log.info("prediction log compacted while reading: reading it again")
    raise AssertionError("unreachable")


def _read(
    store: Store,
    since: datetime | None,
    until: datetime | None,
    source: str | None,
    client: str | None,
) -> pd.DataFrame:
    import pyarrow.dataset as ds

    days = day_parts(store)
    if since is not None:
        # A part file is written after its predictions were made: older days can be skipped.
        days = {day: parts for day, parts in days.items() if day >= f"date={since:%Y-%m-%d}"}
    files = sorted(part for parts in days.values() for part in parts)
    if not files:
        return LOG_SCHEMA.empty_table().to_pandas()
    conditions = []
    if since is not None:
        conditions.append(ds.field("time") >= pa.scalar(since, LOG_SCHEMA.field("time").type))
    if until is not None:
        conditions.append(ds.field("time") < pa.scalar(until, LOG_SCHEMA.field("time").type))
    if source is not None:
        conditions.append(ds.field("source") == source)
    if client is not None:
        conditions.append(ds.field("client") == client)
    where = None
    for condition in conditions:
        where = condition if where is None else where & condition
    # One dataset over every part, read in parallel; a part's missing columns read as null.
    dataset = ds.dataset(store.fs_paths(files), schema=LOG_SCHEMA, filesystem=store.fs)
    with store_error(store.uri(PREFIX)):
        table = dataset.to_table(filter=where)
    return table.sort_by("time").to_pandas()
