"""Pipeline: the lifecycle passes (new records -> gated champion), and a pass run now."""

import httpx
import pandas as pd
import streamlit as st

from core.errors import DpeError
from core.lifecycle import pipeline, pipeline_log
from core.modeling.models import DEFAULT_MODELS
from ui import frame
from ui.format import short, when
from ui.ingest_run import run_with_progress
from ui.labels import label
from ui.links import run_url

AIRFLOW_HEALTH = "/api/v2/monitor/health"
WHO = ("challenger", "champion", "rules")

context = frame.context()
settings = context.settings

challenger = settings.pipeline_model or DEFAULT_MODELS[settings.pipeline_features]
st.caption(
    "Each pass ingests what is new, checks its quality, trains a challenger "
    f"(`{challenger}` on `{settings.pipeline_features}`) on every record older than the "
    "evaluation window, scores challenger, champion and baseline on the window, and promotes "
    f"only a challenger that beats the champion by {settings.gate_margin:g} in "
    f"{label(settings.gate_metric)} and beats the baseline."
)


@st.cache_data(ttl=30, show_spinner=False)
def airflow_up(url: str) -> bool:
    try:
        return httpx.get(url + AIRFLOW_HEALTH, timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


airflow_url = settings.public_airflow_url.rstrip("/")
if airflow_up(airflow_url):
    st.link_button(
        "The dpe_lifecycle DAG in Airflow",
        f"{airflow_url}/dags/dpe_lifecycle",
        icon=":material/open_in_new:",
    )
else:
    st.caption(
        f"Airflow does not answer at {airflow_url}: `make airflow` starts it (the daily "
        "schedule); `make pipeline` runs one pass through it."
    )


def run_now() -> None:
    default = settings.pipeline_source or settings.source
    source = st.text_input("Source", value=default, key="pipeline_source")
    if not st.button("Run a pass now", type="primary", key="pipeline_run"):
        return
    try:
        state = run_with_progress(
            lambda progress: pipeline.run_pass(settings, source, progress), "Lifecycle pass"
        )
    except DpeError as error:
        st.error(f"The pass stopped: {error}", icon=":material/error:")
        return
    st.cache_data.clear()
    frame.refresh_sidebar()  # the pass may have added records and promoted a champion
    st.success(f"Decision: **{state.decision}**", icon=":material/check_circle:")
    for reason in state.reasons:
        st.markdown(f"- {reason}")


def score(scores: dict | None, who: str) -> float | None:
    found = (scores or {}).get(who) or {}
    return found.get(settings.gate_metric)


def history_table(runs: list[dict]) -> pd.DataFrame:
    rows = []
    for run in runs:
        window = run.get("window") or {}
        rows.append(
            {
                "started": when(run["started"]),
                "decision": run["decision"],
                "dataset": short(run.get("dataset_version")),
                "added": run.get("added"),
                "rejected": run.get("rejected"),
                "window": f"{window.get('from')} → {window.get('to')}" if window else "",
                "window rows": window.get("rows"),
                **{who: score(run.get("scores"), who) for who in WHO},
                "drift": ", ".join((run.get("drift") or {}).get("flagged") or []) or "—",
            }
        )
    return pd.DataFrame(rows)


def details(run: dict) -> None:
    experiments = run.get("experiments") or {}
    with st.expander(f"{when(run['started'])} · {run['decision']}"):
        for reason in run.get("reasons") or []:
            st.markdown(f"- {reason}")
        if run.get("run_id"):
            url = run_url(settings, experiments.get("pass"), run["run_id"])
            st.markdown(f"[The pass in MLflow]({url})")
        if run.get("challenger_run_id"):
            url = run_url(settings, experiments.get("challenger"), run["challenger_run_id"])
            st.markdown(f"[The challenger's training run]({url})")


run_now()
st.subheader("Passes")
try:
    runs = pipeline_log.history(settings, limit=50)
except DpeError as error:
    st.warning(str(error), icon=":material/hourglass_empty:")
    st.stop()
if not runs:
    st.info("No pass yet: run one above, or let Airflow run the daily DAG.")
    st.stop()
st.caption(f"{label(settings.gate_metric)} on each pass's window; newest first.")
st.dataframe(
    history_table(runs),
    hide_index=True,
    column_config={who: st.column_config.NumberColumn(format="%.3f") for who in WHO},
)
for run in runs[:10]:
    details(run)
