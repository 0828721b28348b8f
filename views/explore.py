"""Explore: filter the current dataset version; KPIs, charts, missing values and records."""

import streamlit as st

from core.config import Settings
from core.errors import DpeError
from ui import charts, explore, explore_snapshot, frame
from ui.format import short
from ui.labels import label, table_columns

context = frame.context()
settings, status = context.settings, context.needed_dataset()
version = status["dataset_version"]


@st.cache_data(max_entries=8, show_spinner="Loading the dataset version…")
def load_options(duckdb_path: str, version: str, _settings: Settings) -> dict:
    return explore.options(explore_snapshot.snapshot(_settings, version))


@st.cache_data(max_entries=256, show_spinner=False)
def query(name: str, duckdb_path: str, version: str, filters, _settings: Settings, **kwargs):
    """One Explore query, cached per (dataset version, filters, options)."""
    return explore.PAGE_QUERIES[name](
        explore_snapshot.snapshot(_settings, version), filters, **kwargs
    )


def run(name: str, **kwargs):
    return query(name, db_key, version, filters, settings, **kwargs)


db_key = str(settings.duckdb_path.resolve())
try:
    options = load_options(db_key, version, settings)
except DpeError as error:
    st.warning(str(error), icon=":material/hourglass_empty:")
    st.stop()

st.caption(
    f"Dataset version `{short(version)}` · {status['rows']:,} records. "
    "Rejected records (failed validation) are left out unless you include them."
)

# --- filters -----------------------------------------------------------------------------
with st.expander("Filters", expanded=True, icon=":material/tune:"):
    c1, c2, c3 = st.columns(3)
    secteurs = c1.multiselect(
        label("secteur_activite"), options["secteurs"], key="explore_secteurs", placeholder="all"
    )
    periodes = c2.multiselect(
        label("periode_construction"),
        options["periodes"],
        key="explore_periodes",
        placeholder="all",
    )
    labels = c3.multiselect(
        label("etiquette_dpe"), options["labels"], key="explore_labels", placeholder="all"
    )
    c4, c5, c6 = st.columns(3)
    categories = c4.multiselect(
        label("categorie_erp"), options["categories_erp"], key="explore_erp", placeholder="all"
    )
    energies = c5.multiselect(
        label("type_energie_n_1"), options["energies"], key="explore_energies", placeholder="all"
    )
    low, high = options["surface_range"]
    surface = (low, high)
    if high > low:
        surface = c6.slider(
            "Floor area (m²)",
            min_value=float(low),
            max_value=float(high),
            value=(float(low), float(high)),
            key="explore_surface",
            format="%.0f",
            help="The net floor area (SHON), or the usable floor area when SHON is missing "
            "(ADEME's 100 m² placeholder ignored). The slider stops at the 99th percentile; at "
            "its top end it has no limit.",
        )
    include_rejected = c6.checkbox("Include rejected records", key="explore_rejected")

filters = explore.Filters(
    secteurs=tuple(secteurs),
    periodes=tuple(periodes),
    labels=tuple(labels),
    categories_erp=tuple(categories),
    energies=tuple(energies),
    surface_min=surface[0] if surface[0] > low else None,
    surface_max=surface[1] if surface[1] < high else None,
    include_rejected=include_rejected,
)

# --- KPIs --------------------------------------------------------------------------------
kpi = run("kpis")
records = int(kpi["records"] or 0)
k = st.columns(5)
k[0].metric("Records", f"{records:,}")
labelled = int(kpi["labelled"] or 0)
k[1].metric(
    "Labelled",
    f"{labelled:,}",
    f"{labelled / records:.0%} of records" if records else None,
    delta_color="off",
    delta_arrow="off",
)
k[2].metric(
    "Median consumption",
    "—" if kpi["median_conso"] is None else f"{kpi['median_conso']:,.0f}",
    charts.CONSUMPTION_UNIT,
    delta_color="off",
    delta_arrow="off",
)
k[3].metric("Labels A–B", "—" if kpi["share_ab"] is None else f"{kpi['share_ab']:.0%}")
k[4].metric("Labels F–G", "—" if kpi["share_fg"] is None else f"{kpi['share_fg']:.0%}")
if include_rejected and kpi["rejected"]:
    st.caption(f"{int(kpi['rejected']):,} of these records were rejected by validation.")

if records == 0:
    st.info("No record matches these filters: widen them.", icon=":material/filter_alt_off:")
    st.stop()

# --- charts ------------------------------------------------------------------------------
# Only the open tab runs its queries and draws its charts (a million records, seven charts).
overview, consumption, where_tab, missing, table = st.tabs(
    ["Labels", "Consumption", "Map", "Missing values", "Records"],
    key="explore_tab",
    on_change="rerun",
)

with overview:
    if overview.open:
        left, right = st.columns(2)
        left.plotly_chart(
            charts.label_bars(run("label_distribution"), "Label distribution"),
            key="explore_chart_labels",
        )
        share = right.toggle("Share of each period", value=True, key="explore_period_share")
        period = run("label_by_period")
        if period.empty:
            right.info("No labelled record with a construction period here.")
        else:
            right.plotly_chart(charts.period_heatmap(period, share), key="explore_chart_period")

with consumption:
    if consumption.open:
        a, b = st.columns([2, 1])
        by = a.radio(
            "Group sectors by",
            ["family", "sector"],
            format_func={"family": "official scale family", "sector": "sector (6 largest)"}.get,
            horizontal=True,
            key="explore_group_by",
        )
        log_scale = b.toggle("Log scale", value=True, key="explore_log")
        stats = run("consumption_stats", by=by)
        if stats.empty:
            st.info("No labelled record with a consumption here.")
        else:
            st.plotly_chart(
                charts.consumption_boxes(stats, log_scale, by), key="explore_chart_conso"
            )
        scatter = run("surface_vs_consumption")
        if not scatter.empty:
            st.plotly_chart(charts.surface_scatter(scatter, log_scale), key="explore_chart_scatter")
        st.caption(
            "Consumption leaves out ADEME's 0.1 kWhEP/m²/an placeholder (« vierge » diagnostics "
            "filed as A) and zeros. The official scales differ by family: the same consumption "
            "gives different labels in an office and in a hospital."
        )

with where_tab:
    if where_tab.open:
        departements = run("by_departement")
        if departements.empty:
            st.info("These records carry no département.")
        else:
            st.plotly_chart(charts.departement_bars(departements), key="explore_chart_departements")
        points = run("coordinates")
        if not points.empty:
            st.plotly_chart(charts.lambert_map(points), key="explore_chart_map")
        st.caption(
            "No base map offline: the points are the records' Lambert-93 coordinates (France's "
            "official projection) plotted with equal axes, metropolitan France only, sampled."
        )

with missing:
    if missing.open:
        nulls = run("null_profile")
        st.plotly_chart(charts.null_bars(nulls), key="explore_chart_nulls")

with table:
    if table.open:
        rows = run("records").rename(columns={v: k for k, v in explore.RECORD_COLUMNS.items()})
        st.caption(f"The {len(rows):,} most recent of {records:,} matching records.")
        st.dataframe(
            rows,
            hide_index=True,
            column_config=table_columns(rows),
            placeholder="",
            key="explore_records",
        )
        st.download_button(
            f"Download the matching records (CSV, at most {explore.EXPORT_MAX_ROWS:,})",
            data=lambda: explore.export_csv(
                settings, explore_snapshot.snapshot(settings, version), filters
            ),
            file_name=f"dpe_{short(version, 8)}_filtered.csv",
            mime="text/csv",
            key="explore_download",
            icon=":material/download:",
            on_click="ignore",
        )
