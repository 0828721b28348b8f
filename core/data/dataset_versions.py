"""The bookkeeping of an ingest: the dataset version it produced (its counts, its Parquet
snapshot in the object store), the line it adds to the `ingests` log, and the removal of
what a killed ingest left behind.

All of it runs inside the ingest's transaction (`core.data.ingest`): a snapshot is named in
PENDING_SNAPSHOT before it is written, so that if the ingest dies before its commit, the
next one knows the snapshot is its own and removes it (`remove_leftovers`).
"""

import logging
import shutil
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from core.config import Settings
from core.data import warehouse
from core.data.schema import LABELS
from core.data.warehouse import literal
from core.errors import DpeError
from core.storage import Store

log = logging.getLogger(__name__)

SNAPSHOT_TMP_PREFIX = "dpe-snapshot-"
PENDING_SNAPSHOT = "snapshot-pending.txt"  # in DPE_HOME: a snapshot written, not yet committed


def table_counts(con, table: str) -> dict:
    """`table`'s counts (`warehouse.COUNT_COLUMNS`): rows, labelled, rejected, placeholders."""
    valid = ", ".join(literal(label) for label in LABELS)
    row = con.execute(f"""
        SELECT count(*), count(*) FILTER (WHERE etiquette_dpe IN ({valid})),
               count(*) FILTER (WHERE reject_reason IS NOT NULL),
               count(*) FILTER (WHERE surface_placeholder),
               count(*) FILTER (WHERE conso_placeholder)
        FROM {table}
    """).fetchone()
    return dict(zip(warehouse.COUNT_COLUMNS, row, strict=True))


def record_version(con, settings: Settings, source: str) -> tuple[str, str]:
    """The dataset version of `dpe` as it now stands: recorded, its snapshot in the store.

    The version hashes the sorted row digests, so it does not depend on row order nor on
    the source's format: the same records from a CSV or from API pages give the same one.
    The snapshot holds them in key order, whatever order `dpe` has them in (a first ingest
    inserts without one): a version's rows, and so the splits trained on them, are one.
    """
    query = "SELECT md5(string_agg(CAST(row_hash AS VARCHAR), ',' ORDER BY row_hash)) FROM dpe"
    version = con.execute(query).fetchone()[0][:16]
    store = Store(settings)
    path = warehouse.snapshot_path(version)
    if not store.exists(path):  # same version, same content: written once
        settings.home.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=SNAPSHOT_TMP_PREFIX, dir=settings.home) as tmp:
            local = Path(tmp) / "snapshot.parquet"
            con.execute(f"""
                COPY (SELECT * EXCLUDE (row_hash) FROM dpe ORDER BY n_dpe)
                TO {literal(str(local))} (FORMAT parquet)
            """)
            # Named before it is written: if the ingest dies before its commit, the next
            # one knows this snapshot is its own and removes it (`remove_leftovers`).
            (settings.home / PENDING_SNAPSHOT).write_text(path, encoding="utf-8")
            store.put_file(local, path)
    counts = table_counts(con, "dpe")
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


def record_ingest(con, source: str, result: Mapping) -> None:
    """The `ingests` log line of an ingest (`result`: its `core.data.ingest.IngestResult`)."""
    con.execute(
        """
        INSERT INTO ingests (id, ingested_at, source, dataset_version, rows, labelled,
                             duplicates, rejected, added, updated)
        SELECT coalesce(max(id), 0) + 1, ?, ?, ?, ?, ?, ?, ?, ?, ? FROM ingests
        """,
        [
            _now(),
            source,
            result["dataset_version"],
            result["rows"],
            result["labelled"],
            result["duplicates"],
            result["rejected"],
            result["added"],
            result["updated"],
        ],
    )


def remove_leftovers(con, settings: Settings) -> list[str]:
    """Remove what an ingest of this DPE_HOME left when it died before its commit: its
    temporary snapshot folders, and the snapshot it wrote to the store if its version was
    never committed (another home's snapshots in a shared store are never touched). Run
    holding the write lock: no other ingest is running. Returns what was removed."""
    removed = []
    for folder in settings.home.glob(f"{SNAPSHOT_TMP_PREFIX}*"):
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder.name)
    pending = settings.home / PENDING_SNAPSHOT
    if pending.exists():
        path = pending.read_text(encoding="utf-8").strip()
        version = Path(path).name.removesuffix(".parquet")
        query = "SELECT count(*) FROM dataset_versions WHERE version = ?"
        [(committed,)] = con.execute(query, [version]).fetchall()
        try:
            if not committed:
                Store(settings).remove(path)
                removed.append(path)
            pending.unlink()
        except DpeError as error:  # the store is down: tried again next time
            log.warning("leftover snapshot %s not removed: %s", path, error)
    if removed:
        log.info("removed leftovers of an interrupted ingest: %s", ", ".join(removed))
    return removed
