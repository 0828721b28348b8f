"""Monitor: drift of what the champion sees now against the data it was trained on."""

from datetime import UTC, datetime, timedelta

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from core import monitoring, warehouse
from core.errors import DpeError
from ui import charts, common

PREDICTIONS, DATASET = "Logged predictions", "Records a dataset version added"
WINDOWS = {
    "last hour": timedelta(hours=1),
    "last 24 hours": timedelta(days=1),
    "last 7 days": timedelta(days=7),
    "last 30 days": timedelta(days=30),
    "everything logged": None,
}
DRIFT_COLOR, STEADY_COLOR, CURRENT_COLOR = "#e2001a", "#1f7a4d", "#fbba00"
REFERENCE_COLOR = "#8a969e"

settings = common.setup("Monitor", ":material/monitoring:")
st.title(":material/monitoring: Monitor drift")

manifest, problem = common.champion_manifest(settings)
if manifest is None:
    if problem:
        st.warning(problem, icon=":material/warning:")
    else:
        common.no_champion("Monitor")
    st.stop()

st.caption(
    f"Compared with what champion v{manifest.get('model_version')} was trained on: the "
    f"labelled records of dataset `{common.short(manifest.get('dataset_version'))}`. A feature "
    f"drifts when its PSI exceeds {settings.drift_psi_threshold:g} **and** its test (chi² for "
    f"categories, Kolmogorov–Smirnov for numbers) gives p < {settings.drift_p_value:g}."
)


@st.cache_data(ttl=15, max_entries=16, show_spinner="Computing drift…")
def report(home: str, store_uri: str, since, dataset_version, _settings) -> dict:
    return monitoring.drift_report(_settings, since=since, dataset_version=dataset_version)


def versions() -> list[str]:
    try:
        return [info["version"] for info in warehouse.list_versions(settings)]
    except DpeError:
        return []


mode = st.radio("Current records", [PREDICTIONS, DATASET], horizontal=True, key="monitor_mode")
since = dataset_version = None
if mode == PREDICTIONS:
    window = st.selectbox("Window", list(WINDOWS), index=2, key="monitor_window")
    if WINDOWS[window] is not None:
        # Rounded to the minute so reruns within a minute reuse the cached report.
        start = datetime.now(UTC).replace(second=0, microsecond=0) - WINDOWS[window]
        since = start.isoformat()
else:
    choices = versions()
    if not choices:
        common.no_data("Monitor")
        st.stop()
    dataset_version = st.selectbox("Dataset version", choices, key="monitor_dataset")

try:
    result = report(
        str(settings.home.resolve()), settings.store_uri, since, dataset_version, settings
    )
except DpeError as error:
    st.warning(str(error), icon=":material/warning:")
    st.stop()

current_rows = result["rows"]["current"]
if current_rows == 0:
    if mode == PREDICTIONS:
        st.info(
            "No prediction logged in this window yet. Predictions made through the API, the "
            "Predict and Batch pages and `python -m core predict` are logged here; widen the "
            "window or make some.",
            icon=":material/inbox:",
        )
    else:
        st.info(
            f"Dataset `{common.short(dataset_version)}` added no labelled record to the version "
            "before it: nothing to compare.",
            icon=":material/inbox:",
        )
    st.stop()

# --- verdict ---------------------------------------------------------------------------------
drifting = result["drifting_features"]
if result["too_little_data"]:
    st.info(
        f"Too little data to judge: {current_rows} records, at least "
        f"{settings.drift_min_rows} needed (DPE_DRIFT_MIN_ROWS).",
        icon="⏳",
    )
elif result["drift"]:
    st.warning(
        f"Drift on {len(drifting)} feature(s): {', '.join(drifting)}.",
        icon=":material/notification_important:",
    )
else:
    st.success("No drift: no feature moved beyond both thresholds.", icon=":material/check_circle:")
metrics = st.columns(4)
metrics[0].metric("Current records", f"{current_rows:,}")
metrics[1].metric("Training records", f"{result['rows']['reference']:,}")
metrics[2].metric("Drifting features", f"{len(drifting)}")
shift = result["label_shift"]
metrics[3].metric("Predicted labels", "—" if shift is None else shift["verdict"])

features = pd.DataFrame(
    [
        {
            "feature": name,
            "PSI": value["psi"],
            "test": value["test"],
            "p-value": value["p_value"],
            "verdict": value["verdict"],
        }
        for name, value in result["features"].items()
    ]
).sort_values("PSI", ascending=False)


def psi_bars(frame: pd.DataFrame) -> go.Figure:
    colors = [DRIFT_COLOR if v == "drift" else STEADY_COLOR for v in frame["verdict"]]
    fig = go.Figure(
        go.Bar(
            x=frame["feature"],
            y=frame["PSI"],
            marker_color=colors,
            customdata=frame[["test", "p-value", "verdict"]],
            hovertemplate="%{x}<br>PSI %{y:.3f}<br>%{customdata[0]} p = %{customdata[1]:.2g}"
            "<br>%{customdata[2]}<extra></extra>",
        )
    )
    fig.add_hline(
        y=settings.drift_psi_threshold,
        line_dash="dash",
        annotation_text=f"PSI threshold {settings.drift_psi_threshold:g}",
    )
    fig.update_yaxes(title="PSI", type="log" if frame["PSI"].max() > 10 else "linear")
    fig.update_xaxes(title=None, tickangle=-35)
    fig.update_layout(title="PSI per feature (red: drift)", height=420, **charts.LAYOUT)
    return fig


def side_by_side(bins: list[dict], title: str) -> go.Figure:
    """The reference and current shares of each bin, as two bar series."""
    frame = pd.DataFrame(bins)
    frame = frame[(frame["reference"] > 0) | (frame["current"] > 0)]
    fig = go.Figure()
    for column, name, color in (
        ("reference", "training data", REFERENCE_COLOR),
        ("current", "current", CURRENT_COLOR),
    ):
        fig.add_trace(go.Bar(x=frame["bin"], y=frame[column], name=name, marker_color=color))
    fig.update_layout(barmode="group", title=title, height=400, **charts.LAYOUT)
    fig.update_yaxes(title="share of records", tickformat=".0%")
    fig.update_xaxes(title=None, type="category")
    return fig


st.plotly_chart(psi_bars(features), key="monitor_psi")
st.dataframe(
    features,
    hide_index=True,
    column_config={
        "PSI": st.column_config.NumberColumn(format="%.3f"),
        "p-value": st.column_config.NumberColumn(format="%.2e"),
    },
    key="monitor_table",
)

# --- one feature ------------------------------------------------------------------------------
chosen = st.selectbox("Distribution of", list(features["feature"]), key="monitor_feature")
detail = result["features"][chosen]
st.plotly_chart(
    side_by_side(detail["bins"], f"{chosen}: training data vs current"), key="monitor_bins"
)
st.caption(
    f"PSI {detail['psi']:.3f} · {detail['test']} p = {detail['p_value']:.2g} · "
    f"{detail['verdict']}. Numbers are binned on the training data's deciles; a value that "
    "fills 5 % or more of it (such as ADEME's 100 m² placeholder) is a bin of its own."
)

# --- predicted labels and volume ---------------------------------------------------------------
if shift is not None:
    st.subheader("Predicted labels")
    st.plotly_chart(
        side_by_side(shift["bins"], "Labels predicted: champion on its training data vs now"),
        key="monitor_labels",
    )
    st.caption(f"PSI {shift['psi']:.3f} · chi² p = {shift['p_value']:.2g} · {shift['verdict']}.")

if result["volume"] and result["volume"]["counts"]:
    st.subheader("Volume")
    counts = pd.DataFrame(result["volume"]["counts"])
    fig = go.Figure(
        [
            go.Bar(x=part["start"], y=part["count"], name=source)
            for source, part in counts.groupby("source")
        ]
    )
    fig.update_layout(
        barmode="stack",
        title=f"Predictions per {result['volume']['period']} and source",
        height=320,
        **charts.LAYOUT,
    )
    st.plotly_chart(fig, key="monitor_volume")
