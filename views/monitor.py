"""Monitor: drift of what the champion sees now against the data it was trained on."""

from datetime import UTC, datetime, timedelta

import pandas as pd
import streamlit as st

from core.data import warehouse
from core.errors import DpeError
from core.monitoring import drift
from ui import api_metrics, frame, monitor_charts, status
from ui.format import short
from ui.labels import label

PREDICTIONS, DATASET = "Logged predictions", "Records a dataset version added"
WINDOWS = {
    "last hour": timedelta(hours=1),
    "last 24 hours": timedelta(days=1),
    "last 7 days": timedelta(days=7),
    "last 30 days": timedelta(days=30),
    "everything logged": None,
}

context = frame.context()
settings, manifest = context.settings, context.needed_champion()

st.caption(
    f"Compared with what champion v{manifest.get('model_version')} was trained on: the "
    f"labelled records of dataset `{short(manifest.get('dataset_version'))}`. A feature "
    f"drifts when its PSI exceeds {settings.drift_psi_threshold:g} **and** its test (chi² for "
    f"categories, Kolmogorov–Smirnov for numbers) gives p < {settings.drift_p_value:g}."
)


@st.cache_data(ttl=15, max_entries=16, show_spinner="Computing drift…")
def report(home: str, store_uri: str, since, dataset_version, _settings) -> drift.DriftReport:
    return drift.drift_report(_settings, since=since, dataset_version=dataset_version)


def versions() -> list[str]:
    try:
        return [info["version"] for info in warehouse.list_versions(settings)]
    except DpeError:
        return []


mode = st.radio("Current records", [PREDICTIONS, DATASET], horizontal=True, key="monitor_mode")
since = dataset_version = None
if mode == PREDICTIONS:
    window = st.selectbox("Window", list(WINDOWS), index=2, key="monitor_window")
    span = WINDOWS[window]
    if span is not None:
        # Rounded to the minute so reruns within a minute reuse the cached report.
        start = datetime.now(UTC).replace(second=0, microsecond=0) - span
        since = start.isoformat()
else:
    choices = versions()
    if not choices:
        frame.no_data("Monitor", None)
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
            f"Dataset `{short(dataset_version)}` added no labelled record to the version "
            "before it: nothing to compare.",
            icon=":material/inbox:",
        )
    st.stop()

# --- verdict ---------------------------------------------------------------------------------
drifting = result["drifting_features"]
sample_warning = result["sample_warning"]
if result["too_little_data"]:
    st.info(
        f"Too little data to judge: {current_rows} records, at least "
        f"{settings.drift_min_rows} needed (DPE_DRIFT_MIN_ROWS). The statistics below are "
        "shown for information, not as a verdict.",
        icon="⏳",
    )
elif sample_warning:
    st.info(
        f"{sample_warning[:1].upper()}{sample_warning[1:]}. Such traffic is bound to differ "
        "from the training data: widen the window, or wait for varied requests. The "
        "statistics below are shown for information.",
        icon=":material/info:",
    )
elif result["drift"]:
    st.warning(
        f"Drift on {len(drifting)} feature(s): {', '.join(label(f) for f in drifting)}.",
        icon=":material/notification_important:",
    )
else:
    st.success("No drift: no feature moved beyond both thresholds.", icon=":material/check_circle:")
judged = not (result["too_little_data"] or sample_warning)
metrics = st.columns(4)
metrics[0].metric("Current records", f"{current_rows:,}")
metrics[1].metric("Training records", f"{result['rows']['reference']:,}")
metrics[2].metric("Drifting features", f"{len(drifting)}" if judged else "—")
shift = result["label_shift"]
# The labels are judged when the inputs are: one verdict on the page, not two that disagree.
metrics[3].metric("Predicted labels", shift["verdict"] if shift and judged else "—")

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

st.plotly_chart(
    monitor_charts.psi_bars(
        features, settings.drift_psi_threshold, settings.drift_p_value, judged=judged
    ),
    key="monitor_psi",
)
st.dataframe(
    features.assign(feature=features["feature"].map(label)),
    hide_index=True,
    column_config={
        "feature": "Feature",
        "PSI": st.column_config.NumberColumn(format="%.3f"),
        "test": "Test",
        "p-value": st.column_config.NumberColumn(format="%.2e"),
        "verdict": "Verdict",
    },
    key="monitor_table",
)

# --- one feature ------------------------------------------------------------------------------
chosen = st.selectbox(
    "Distribution of", list(features["feature"]), format_func=label, key="monitor_feature"
)
detail = result["features"][chosen]
st.plotly_chart(
    monitor_charts.distribution_bars(detail["bins"], f"{label(chosen)}: training data vs current"),
    key="monitor_bins",
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
        monitor_charts.distribution_bars(
            shift["bins"], "Labels predicted: champion on its training data vs now"
        ),
        key="monitor_labels",
    )
    st.caption(f"PSI {shift['psi']:.3f} · chi² p = {shift['p_value']:.2g} · {shift['verdict']}.")

if result["volume"] and result["volume"]["counts"]:
    st.subheader("Volume")
    st.plotly_chart(
        monitor_charts.volume_bars(
            pd.DataFrame(result["volume"]["counts"]), result["volume"]["period"]
        ),
        key="monitor_volume",
    )

# --- the API's counters (its GET /metrics, as Prometheus scrapes it) ----------------------------
st.subheader("API counters")
api = status.api_status(settings)
if not api.up:  # a service the workbench cannot reach: how to start it, not an error
    st.warning(f"No API counters. {api.text}", icon=":material/warning:")
    st.stop()
try:
    counters = api_metrics.read_api_counters(settings.public_api_url, settings.http_timeout_s)
except DpeError as error:  # it answers, with no counters to show (DPE_METRICS=false)
    st.info(f"No API counters: {error}.", icon=":material/info:")
else:
    predicted = sum(row["count"] for row in counters["predictions"])
    refused = sum(counters["errors"].values())
    left, right = st.columns(2)
    left.metric("Records predicted by the API", f"{predicted:,}")
    right.metric("Records or requests refused", f"{refused:,}")
    if counters["predictions"]:
        st.dataframe(pd.DataFrame(counters["predictions"]), key="monitor_api_predictions")
    if counters["errors"]:
        st.caption(" · ".join(f"{reason}: {n:,}" for reason, n in counters["errors"].items()))
