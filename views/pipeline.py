"""Pipeline: the lifecycle passes (new records -> gated champion), a pass run now, and the
records a refused pass quarantined, to accept."""

import httpx
import streamlit as st

from core.data import quarantine
from core.errors import DpeError
from core.lifecycle import pipeline, pipeline_log
from core.modeling.models import DEFAULT_MODELS
from ui import frame
from ui.format import when
from ui.ingest_run import run_with_progress
from ui.labels import label
from ui.links import run_url
from ui.passes import WHO, error_text, history_table, quarantine_text

AIRFLOW_HEALTH = "/api/v2/monitor/health"

context = frame.context()
settings = context.settings

challenger = settings.pipeline_model or DEFAULT_MODELS[settings.pipeline_features]
st.caption(
    "Each pass ingests what is new, checks its quality (an increment of fewer than "
    f"{settings.gate_min_rows} records waits for more; one that fails the data gate is "
    f"quarantined), trains a challenger (`{challenger}` on `{settings.pipeline_features}`) on "
    "every record older than the evaluation window, scores challenger, champion and baseline "
    f"on the window, and promotes only a challenger that beats the champion by "
    f"{settings.gate_margin:g} in {label(settings.gate_metric)} and beats the baseline."
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
    st.success(
        f"Pass {state.pass_id} · decision: **{state.decision}**", icon=":material/check_circle:"
    )
    for reason in state.reasons:
        st.markdown(f"- {reason}")


def who() -> str:
    """Who accepts, as the record keeps it: the signed-in user when there is one."""
    user = st.user.get("email") or st.context.headers.get("X-Forwarded-Email")
    return f"{user} (workbench)" if user else "workbench"


def accept(pass_id: int) -> None:
    """Callback: runs before the page is drawn again, which then shows the accepted state."""
    done = quarantine.accept(settings, pass_id, who())
    st.session_state["pipeline_accepted"] = (
        f"Pass {pass_id}: {done['accepted']} records accepted; the next pass that trains uses them."
    )


def details(run: dict) -> None:
    experiments = run.get("experiments") or {}
    title = f"Pass {run.get('pass_id', '')} · {when(run['started'])} · "
    with st.expander(title + (run.get("decision") or run.get("status", ""))):
        if run.get("error"):
            st.warning(error_text(run), icon=":material/error:")
        for reason in run.get("reasons") or []:
            st.markdown(f"- {reason}")
        held = run.get("quarantine")
        if held:
            st.markdown(quarantine_text(held))
            if held["held"]:
                st.button(
                    f"Accept the {held['held']} quarantined records",
                    key=f"pipeline_accept_{run['pass_id']}",
                    on_click=accept,
                    args=(run["pass_id"],),
                    help="They join training: check the reasons above first.",
                )
        if run.get("run_id"):
            url = run_url(settings, experiments.get("pass"), run["run_id"])
            st.markdown(f"[The pass in MLflow]({url})")
        if run.get("challenger_run_id"):
            url = run_url(settings, experiments.get("challenger"), run["challenger_run_id"])
            st.markdown(f"[The challenger's training run]({url})")


run_now()
if accepted := st.session_state.pop("pipeline_accepted", None):
    st.success(accepted, icon=":material/check_circle:")
st.subheader("Passes")
try:
    runs = pipeline_log.history(settings, limit=50)
except DpeError as error:
    st.warning(str(error), icon=":material/hourglass_empty:")
    st.stop()
if not runs:
    st.info("No pass yet: run one above, or let Airflow run the daily DAG.")
    st.stop()
if runs[0].get("status") == "failed":
    st.warning(error_text(runs[0]), icon=":material/error:")
st.caption(f"Newest first; {', '.join(WHO)}: {label(settings.gate_metric)} on the pass's window.")
st.dataframe(history_table(runs, settings.gate_metric), hide_index=True)
for run in runs[:10]:
    details(run)
