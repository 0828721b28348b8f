"""The Explore page's snapshot: one dataset version's columns in an in-memory DuckDB database.

How the page stays fast on a million records without holding the warehouse open: once per
dataset version, the columns the page needs (plus a few derived ones: the consumption
without its placeholder, a usable surface, metropolitan Lambert-93 coordinates, a bitmask
of which official columns are null) are copied from the warehouse through one brief
read-only connection into a compressed in-memory DuckDB database, the *snapshot*. The
warehouse file is closed again at once, so an ingest in another process can take its
write lock whenever it wants (DuckDB allows one read-write process per file).

Queries (`ui.explore`) run on the snapshot through a cursor each (`Snapshot.cursor`:
one per call, so never shared between threads). A new dataset version (another ingest)
gets a new snapshot; the last KEPT_SNAPSHOTS warehouses' snapshots are kept.
"""

import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import duckdb
import pandas as pd

from core.config import Settings
from core.data import warehouse
from core.data.schema import COLUMNS
from core.errors import NotFound
from core.modeling import scales

KEPT_SNAPSHOTS = 4
# Lambert-93 bounds of metropolitan France (overseas records use other projections).
LAMBERT93_X = (50_000.0, 1_300_000.0)
LAMBERT93_Y = (6_000_000.0, 7_200_000.0)
# The snapshot: what the page filters, charts and lists, from the warehouse's `dpe` table.
# `conso` drops ADEME's 0.1 kWhEP/m²/an placeholder; `surface` is the SHON when known, else
# the surface utile unless it is the 100 m² placeholder; `null_mask` has bit i set when the
# i-th official column (`core.data.schema.COLUMNS`) is null.
_METRO = (
    "coordonnee_cartographique_x_ban BETWEEN ? AND ?"
    " AND coordonnee_cartographique_y_ban BETWEEN ? AND ?"
)
_NULL_MASK = " + ".join(
    f"(CASE WHEN {snake} IS NULL THEN {1 << i} ELSE 0 END)"
    for i, (_, snake, _) in enumerate(COLUMNS)
)
SNAPSHOT_SQL = f"""
    SELECT n_dpe, date_etablissement_dpe AS date_dpe, etiquette_dpe AS label,
           secteur_activite AS secteur, periode_construction AS periode, categorie_erp,
           type_energie_n_1 AS energie, n_departement_ban AS departement,
           nom_commune_ban AS commune, reject_reason IS NOT NULL AS rejected,
           conso_kwhep_m2_an, surface_utile, surface_shon,
           CASE WHEN conso_placeholder THEN NULL ELSE conso_kwhep_m2_an END AS conso,
           coalesce(surface_shon,
                    CASE WHEN surface_placeholder THEN NULL ELSE surface_utile END) AS surface,
           CASE WHEN {_METRO} THEN coordonnee_cartographique_x_ban / 1000 END::FLOAT AS x_km,
           CASE WHEN {_METRO} THEN coordonnee_cartographique_y_ban / 1000 END::FLOAT AS y_km,
           CASE WHEN etiquette_dpe IN ('F', 'G') THEN 1
                WHEN etiquette_dpe IS NOT NULL THEN 0 END::TINYINT AS is_fg,
           CASE WHEN etiquette_dpe IN ('A', 'B') THEN 1
                WHEN etiquette_dpe IS NOT NULL THEN 0 END::TINYINT AS is_ab,
           ({_NULL_MASK})::BIGINT AS null_mask
    FROM dpe"""
_SNAPSHOT_PARAMS = [*LAMBERT93_X, *LAMBERT93_Y] * 2


@dataclass
class Snapshot:
    """One dataset version's explore table, in a compressed in-memory DuckDB database."""

    version: str | None
    rows: int
    built_s: float
    _con: duckdb.DuckDBPyConnection = field(repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @contextmanager
    def cursor(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor for one query: never shared between threads."""
        with self._lock:
            cursor = self._con.cursor()
        try:
            yield cursor
        finally:
            cursor.close()

    def query(self, sql: str, params: list | None = None) -> pd.DataFrame:
        with self.cursor() as cursor:
            return cursor.execute(sql, params or []).df()


_snapshots: OrderedDict[str, Snapshot] = OrderedDict()
_snapshots_lock = threading.Lock()


def snapshot(settings: Settings, version: str | None = None) -> Snapshot:
    """The explore snapshot of this warehouse; rebuilt when `version` (the dataset version
    the caller knows as current) is not the one it holds."""
    key = str(settings.duckdb_path.resolve())
    with _snapshots_lock:
        snap = _snapshots.get(key)
        if snap is None or (version is not None and snap.version != version):
            snap = _build_snapshot(settings)
            _snapshots[key] = snap
        _snapshots.move_to_end(key)
        while len(_snapshots) > KEPT_SNAPSHOTS:
            _snapshots.popitem(last=False)
        return snap


def _build_snapshot(settings: Settings) -> Snapshot:
    """Copy the page's columns out of the warehouse (one brief read-only connection), then
    add each sector's scale family and store the rows newest first, compressed.

    Newest first: DuckDB keeps insertion order for scans without ORDER BY, so the records
    table is a plain `LIMIT` that stops at the first matching rows instead of a top-N sort.
    """
    started = time.perf_counter()
    with warehouse.connect(settings) as source:
        version = warehouse.current_version(settings)
        if version is None:
            raise NotFound(warehouse.NO_DATA)
        rows = source.sql(SNAPSHOT_SQL, params=_SNAPSHOT_PARAMS).to_arrow_table()
    con = duckdb.connect(":memory:")
    con.execute("ATTACH ':memory:' AS snap (COMPRESS)")
    con.register("snapshot_rows", rows)
    sectors = [
        row[0] for row in con.execute("SELECT DISTINCT secteur FROM snapshot_rows").fetchall()
    ]
    families = pd.DataFrame(
        {"secteur": sectors, "family": [scales.family_for_sector(s) for s in sectors]}
    )
    con.register("sector_families", families)
    con.execute(
        """CREATE TABLE snap.explore AS
           SELECT snapshot_rows.*, sector_families.family
           FROM snapshot_rows LEFT JOIN sector_families USING (secteur)
           ORDER BY date_dpe DESC NULLS LAST, n_dpe"""
    )
    con.unregister("snapshot_rows")
    con.unregister("sector_families")
    con.execute("CHECKPOINT snap")  # compresses the table: scans get about twice faster
    return Snapshot(version, rows.num_rows, time.perf_counter() - started, con)
