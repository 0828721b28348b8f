"""The Explore page's queries, computed in DuckDB on the explore snapshot.

The snapshot (`ui.explore_snapshot`) holds one dataset version's columns in memory;
every query here runs on it, aggregates in DuckDB, LIMITs the records table and samples
the scatter plots. Every query is parameterised: a filter value is always a `?`
parameter, never text formatted into SQL (the SQL text only holds this module's
constants). The page caches each result per (dataset version, filters), so a cached
result never goes stale.
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.config import Settings
from core.data import warehouse
from core.data.csv_cells import safe_text_columns
from core.data.schema import COLUMNS, LABELS, PERIODES
from ui.explore_snapshot import Snapshot

NO_LABEL = "no label"
# Filter name -> snapshot column; the values of each are offered by `options()`.
CATEGORY_FILTERS = {
    "secteurs": "secteur",
    "periodes": "periode",
    "labels": "label",
    "categories_erp": "categorie_erp",
    "energies": "energie",
}
# The records table: snapshot column -> header shown.
RECORD_COLUMNS = {
    "n_dpe": "N°DPE",
    "date_dpe": "Date DPE",
    "label": "Étiquette",
    "conso_kwhep_m2_an": "Conso (kWhEP/m²/an)",
    "secteur": "Secteur d'activité",
    "periode": "Période",
    "categorie_erp": "Catégorie ERP",
    "energie": "Énergie n°1",
    "surface_utile": "Surface utile (m²)",
    "surface_shon": "SHON (m²)",
    "commune": "Commune",
    "departement": "Département",
}
EXPORT_MAX_ROWS = 100_000


@dataclass(frozen=True)
class Filters:
    """What the user filtered on. Empty tuples and None bounds mean "no filter"."""

    secteurs: tuple[str, ...] = ()
    periodes: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()
    categories_erp: tuple[str, ...] = ()
    energies: tuple[str, ...] = ()
    surface_min: float | None = None
    surface_max: float | None = None
    include_rejected: bool = False


def where(filters: Filters) -> tuple[str, list]:
    """The WHERE clause of a filter set (over the snapshot), with its parameters."""
    clauses, params = [], []
    if not filters.include_rejected:
        clauses.append("NOT rejected")
    for name, column in CATEGORY_FILTERS.items():
        values = getattr(filters, name)
        if values:
            clauses.append(f"{column} IN ({', '.join('?' * len(values))})")
            params += list(values)
    if filters.surface_min is not None:
        clauses.append("surface >= ?")
        params.append(float(filters.surface_min))
    if filters.surface_max is not None:
        clauses.append("surface <= ?")
        params.append(float(filters.surface_max))
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def _and(where_sql: str, condition: str) -> str:
    return f"{where_sql} AND {condition}" if where_sql else f" WHERE {condition}"


def _period_order(periodes) -> list[str]:
    periodes = list(periodes)
    known = [p for p in PERIODES if p in periodes]
    return known + sorted(p for p in periodes if p not in PERIODES)


def _label_order(labels) -> list[str]:
    labels = list(labels)
    others = sorted(label for label in labels if label not in LABELS and label != NO_LABEL)
    return (
        [label for label in LABELS if label in labels]
        + others
        + ([NO_LABEL] if NO_LABEL in labels else [])
    )


# --- what the filters offer (once per dataset version) -----------------------------------


def options(snap: Snapshot) -> dict:
    """Values of each filter (most frequent first; labels and periods in their own order)
    and the surface range worth offering (min to 99th percentile), over valid records."""
    selects = [
        f"SELECT '{name}' AS filter, {column} AS value, count(*) AS n FROM snap.explore"
        f" WHERE NOT rejected AND {column} IS NOT NULL GROUP BY ALL"
        for name, column in CATEGORY_FILTERS.items()
    ]
    values = snap.query(" UNION ALL ".join(selects) + " ORDER BY filter, n DESC, value")
    low, high = snap.query(
        "SELECT min(surface), quantile_disc(surface, 0.99) FROM snap.explore WHERE NOT rejected"
    ).iloc[0]
    result = {
        name: values.loc[values["filter"] == name, "value"].tolist() for name in CATEGORY_FILTERS
    }
    result["labels"] = _label_order(result["labels"])
    result["periodes"] = _period_order(result["periodes"])
    result["surface_range"] = (
        0.0 if pd.isna(low) else float(low),
        0.0 if pd.isna(high) else float(high),
    )
    return result


# --- the page's queries ------------------------------------------------------------------


def kpis(snap: Snapshot, filters: Filters) -> dict:
    """Records, labelled, rejected, median consumption, shares of A–B and F–G labels."""
    where_sql, params = where(filters)
    frame = snap.query(
        f"""SELECT count(*) AS records, count(label) AS labelled,
                   count(*) FILTER (WHERE rejected) AS rejected,
                   median(conso) AS median_conso,
                   avg(is_ab) AS share_ab, avg(is_fg) AS share_fg
            FROM snap.explore{where_sql}""",
        params,
    )
    return {key: (None if pd.isna(value) else value) for key, value in frame.iloc[0].items()}


def label_distribution(snap: Snapshot, filters: Filters) -> pd.DataFrame:
    """Records per label: A–G, then any invalid label, then the unlabelled ones."""
    where_sql, params = where(filters)
    frame = snap.query(
        f"SELECT label, count(*) AS records FROM snap.explore{where_sql} GROUP BY ALL", params
    )
    frame["label"] = frame["label"].fillna(NO_LABEL)
    order = _label_order(frame["label"])
    return frame.set_index("label").loc[order].reset_index()


def consumption_stats(
    snap: Snapshot, filters: Filters, by: str = "family", top_sectors: int = 6
) -> pd.DataFrame:
    """Box statistics (p05, q1, median, q3, p95) of the consumption per label and group.

    `by="family"`: sectors grouped by the official scale the regulation gives them
    (`core.modeling.scales.family_for_sector`); `by="sector"`: the `top_sectors` sectors with
    the most records in the selection.
    """
    where_sql, params = where(filters)
    where_sql = _and(where_sql, "label IS NOT NULL AND conso > 0")  # 0 is no consumption
    group = "family" if by == "family" else "secteur"
    frame = snap.query(
        f"""SELECT label, {group} AS grp, count(*) AS records,
                   quantile_cont(conso, [0.05, 0.25, 0.5, 0.75, 0.95]) AS q
            FROM snap.explore{where_sql} GROUP BY ALL ORDER BY label, grp""",
        params,
    )
    if by != "family" and not frame.empty:
        top = frame.groupby("grp")["records"].sum().nlargest(top_sectors).index
        frame = frame[frame["grp"].isin(top)].reset_index(drop=True)
    quantiles = pd.DataFrame(
        frame.pop("q").tolist(), columns=["p05", "q1", "median", "q3", "p95"], index=frame.index
    )
    return pd.concat([frame.rename(columns={"grp": "group"}), quantiles], axis=1)


def surface_vs_consumption(snap: Snapshot, filters: Filters, sample: int = 4000) -> pd.DataFrame:
    """A random sample (at most `sample`) of labelled records with surface and consumption."""
    where_sql, params = where(filters)
    where_sql = _and(where_sql, "label IS NOT NULL AND conso > 0 AND surface > 0")
    frame = snap.query(
        f"""SELECT * FROM (SELECT surface, conso, label, secteur FROM snap.explore{where_sql})
            USING SAMPLE reservoir({int(sample)} ROWS) REPEATABLE (42)""",
        params,
    )
    return frame.sort_values("label", kind="stable").reset_index(drop=True)


def label_by_period(snap: Snapshot, filters: Filters) -> pd.DataFrame:
    """Records per (période de construction, label): periods as rows, A–G as columns."""
    where_sql, params = where(filters)
    where_sql = _and(where_sql, "label IS NOT NULL AND periode IS NOT NULL")
    frame = snap.query(
        f"SELECT periode, label, count(*) AS records FROM snap.explore{where_sql} GROUP BY ALL",
        params,
    )
    table = frame.pivot_table(
        index="periode", columns="label", values="records", aggfunc="sum", fill_value=0
    )
    return table.reindex(
        index=_period_order(table.index), columns=_label_order(table.columns), fill_value=0
    ).astype(int)


def by_departement(snap: Snapshot, filters: Filters) -> pd.DataFrame:
    """Per département: records, labelled, share of F–G among the labelled."""
    where_sql, params = where(filters)
    where_sql = _and(where_sql, "departement IS NOT NULL")
    return snap.query(
        f"""SELECT departement, count(*) AS records, count(label) AS labelled,
                   avg(is_fg) AS share_fg
            FROM snap.explore{where_sql} GROUP BY ALL ORDER BY records DESC, departement""",
        params,
    )


def coordinates(snap: Snapshot, filters: Filters, sample: int = 5000) -> pd.DataFrame:
    """A sample of metropolitan records' Lambert-93 coordinates (km) with their label.

    Lambert-93 (EPSG:2154) is France's official conformal projection: plotted with equal
    axes, X/Y already are a map of France, no conversion to longitude/latitude needed.
    """
    where_sql, params = where(filters)
    where_sql = _and(where_sql, "x_km IS NOT NULL AND y_km IS NOT NULL")
    frame = snap.query(
        f"""SELECT * FROM (SELECT x_km, y_km, coalesce(label, ?) AS label, departement
                           FROM snap.explore{where_sql})
            USING SAMPLE reservoir({int(sample)} ROWS) REPEATABLE (42)""",
        [NO_LABEL, *params],
    )
    order = {label: i for i, label in enumerate(_label_order(frame["label"].unique()))}
    return frame.sort_values("label", key=lambda s: s.map(order), kind="stable").reset_index(
        drop=True
    )


def null_profile(snap: Snapshot, filters: Filters) -> pd.DataFrame:
    """Share of missing values of each official column, over the filtered records.

    Records are grouped by their null bitmask (a few thousand patterns at most), then the
    bits are counted in numpy: one cheap aggregate instead of 63 column scans.
    """
    where_sql, params = where(filters)
    patterns = snap.query(
        f"SELECT null_mask, count(*) AS n FROM snap.explore{where_sql} GROUP BY ALL", params
    )
    masks = patterns["null_mask"].to_numpy(dtype=np.int64)
    counts = patterns["n"].to_numpy(dtype=np.int64)
    bits = (masks[:, None] >> np.arange(len(COLUMNS), dtype=np.int64)) & 1
    missing = (bits * counts[:, None]).sum(axis=0)
    total = int(counts.sum())
    frame = pd.DataFrame(
        {
            "column": [official for official, _, _ in COLUMNS],
            "field": [snake for _, snake, _ in COLUMNS],
            "missing": missing,
        }
    )
    frame["share_missing"] = frame["missing"] / total if total else 0.0
    return frame.sort_values(["share_missing", "column"], ascending=[False, True]).reset_index(
        drop=True
    )


def records(snap: Snapshot, filters: Filters, limit: int = 200) -> pd.DataFrame:
    """The most recent filtered records: a page of them, never the whole table (the
    snapshot is stored newest first, so this LIMIT stops at the first matches)."""
    where_sql, params = where(filters)
    frame = snap.query(
        f"SELECT {', '.join(RECORD_COLUMNS)} FROM snap.explore{where_sql} LIMIT ?",
        [*params, int(limit)],
    )
    return frame.rename(columns=RECORD_COLUMNS)


def export_csv(
    settings: Settings, snap: Snapshot, filters: Filters, max_rows: int = EXPORT_MAX_ROWS
) -> bytes:
    """The filtered records with every official column (ADEME names), as UTF-8 CSV with a
    byte-order mark: without it, Excel (French Windows at least) reads the file as cp1252
    and garbles « Données », « N°DPE »; the readers of this project skip it.

    The filter runs on the snapshot; the rows come from the warehouse through a brief
    read-only connection. At most `max_rows` rows, in N°DPE order.
    """
    where_sql, params = where(filters)
    ids = snap.query(
        f"SELECT n_dpe FROM snap.explore{where_sql} ORDER BY n_dpe LIMIT ?",
        [*params, int(max_rows)],
    )
    selected = ", ".join(
        f"{snake} AS {warehouse.quote(official)}" for official, snake, _ in COLUMNS
    )
    with warehouse.connect(settings) as con:
        con.register("wanted_ids", ids)
        frame = con.execute(
            f"SELECT {selected} FROM dpe WHERE n_dpe IN (SELECT n_dpe FROM wanted_ids)"
            " ORDER BY n_dpe"
        ).df()
        con.unregister("wanted_ids")
    # Text cells a spreadsheet would run as formulas are neutralised (CSV injection).
    frame = safe_text_columns(frame, frame.columns)
    return frame.to_csv(index=False).encode("utf-8-sig")


# The queries one view of the Explore page runs (the bench times exactly these).
PAGE_QUERIES = {
    "kpis": kpis,
    "label_distribution": label_distribution,
    "consumption_stats": consumption_stats,
    "surface_vs_consumption": surface_vs_consumption,
    "label_by_period": label_by_period,
    "by_departement": by_departement,
    "coordinates": coordinates,
    "null_profile": null_profile,
    "records": records,
}
