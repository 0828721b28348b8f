"""Compare: runs from MLflow side by side; promote one to champion after a confirmation."""

import pandas as pd
import streamlit as st

from core import registry
from core.errors import DpeError
from ui import charts, common

settings = common.setup("Compare", ":material/compare_arrows:")
st.title("Compare runs and promote a champion")

manifest, champion_problem = common.champion_manifest(settings)
with st.container(border=True):
    if manifest:
        metrics = manifest.get("metrics") or {}
        scores = ", ".join(
            f"{label} {metrics[name]:.3f}"
            for name, label in (("macro_f1", "macro-F1"), ("accuracy", "accuracy"))
            if isinstance(metrics.get(name), int | float)
        )
        st.markdown(
            f":material/trophy: **Current champion**: {manifest.get('registered_model', 'dpe')} "
            f"v{manifest.get('model_version')} · run `{common.short(manifest.get('run_id'), 8)}` "
            f"· {manifest.get('model_family', '')} `{manifest.get('feature_set', '')}`"
            + (f" · {scores}" if scores else "")
        )
    elif champion_problem:
        st.warning(champion_problem, icon=":material/warning:")
    else:
        st.markdown(":material/trophy: **No champion yet**: promote a run below.")

names = common.experiments(settings)
experiment = names[0]
if len(names) > 1:
    experiment = st.selectbox(
        "Experiment",
        names,
        key="compare_experiment",
        help="MLflow experiments; training logs to DPE_EXPERIMENT_NAME.",
    )
runs, problem = common.list_runs(settings, experiment)
if problem:
    st.warning(problem, icon=":material/warning:")
    st.stop()
if runs.empty:
    st.info("No runs yet: train a model first.", icon=":material/science:")
    st.page_link(common.PAGES["train"], label="Train a model", icon=":material/science:")
    st.stop()

# --- filters -----------------------------------------------------------------------------
filters = {
    "features": "Feature set",
    "dataset_version": "Dataset version",
    "model": "Model family",
}
columns = st.columns(len(filters))
shown = runs
for column, (name, label) in zip(columns, filters.items(), strict=True):
    if name not in runs:
        continue
    values = sorted(runs[name].dropna().astype(str).unique())
    chosen = column.multiselect(label, values, key=f"compare_filter_{name}", placeholder="all")
    if chosen:
        shown = shown[shown[name].astype(str).isin(chosen)]
if shown.empty:
    st.info("No run matches these filters.", icon=":material/filter_alt_off:")
    st.stop()

champion_run = (manifest or {}).get("run_id")
table = common.runs_table(shown, champion_run)
st.dataframe(table, hide_index=True, key="compare_runs")


def describe(run_id: str) -> str:
    row = shown.loc[shown["run_id"] == run_id].iloc[0]
    score = row.get("macro_f1")
    score = f" · macro-F1 {score:.3f}" if pd.notna(score) else ""
    crown = " ★" if run_id == champion_run else ""
    return f"{row.get('model', '?')} · {row.get('features', '?')}{score} · {run_id[:8]}{crown}"


# --- side by side ------------------------------------------------------------------------
st.subheader("Side by side")
ranked = shown.sort_values("macro_f1", ascending=False, na_position="last")["run_id"].tolist()
selected = st.multiselect(
    "Runs to compare (2 or more)",
    ranked,
    default=ranked[:2],
    format_func=describe,
    key="compare_selected",
)
if len(selected) < 2:
    st.info("Choose at least two runs to compare them.", icon=":material/info:")
else:
    try:
        comparison = common.compare_runs(settings, selected)
    except DpeError as error:
        st.warning(str(error), icon=":material/warning:")
        st.stop()
    metric_names = [m for m in common.HEADLINE_METRICS if m in comparison["metrics"]]
    st.plotly_chart(
        charts.metric_bars(comparison["metrics"], metric_names), key="compare_chart_metrics"
    )
    per_class = comparison["per_class"]
    if not per_class.empty:
        metric = st.radio(
            "Per class",
            sorted(per_class["metric"].unique()),
            horizontal=True,
            key="compare_per_class_metric",
        )
        st.plotly_chart(
            charts.per_class_bars(per_class[per_class["metric"] == metric], metric),
            key="compare_chart_per_class",
        )
    params = comparison["params"]
    differ = st.toggle("Only the parameters that differ", value=True, key="compare_params_differ")
    if differ:
        params = params[params.astype(str).nunique(axis=1) > 1]
    st.markdown(f"**Parameters** ({len(params)})")
    st.dataframe(params, key="compare_params")

# --- promotion ---------------------------------------------------------------------------
st.subheader("Promote a champion")
candidate = st.selectbox("Run to promote", ranked, format_func=describe, key="compare_promote_run")
replaced = f" It replaces v{manifest.get('model_version')}." if manifest else ""
confirmed = st.checkbox(
    f"I confirm: register run {candidate[:8]} as the new champion, served by the API and the "
    f"Predict pages.{replaced}",
    key="compare_promote_confirm",
)


def promote(run_id: str) -> None:
    """The button's callback: promote, remember the answer, untick the confirmation."""
    st.session_state["compare_promote_confirm"] = False
    st.session_state.pop("compare_promote_problem", None)
    try:
        st.session_state["compare_promoted"] = registry.promote(settings, run_id)
    except DpeError as error:
        st.session_state["compare_promote_problem"] = f"Promotion failed: {error}"
        return
    common.clear_status()
    common.clear_runs()


st.button(
    "Promote to champion",
    key="compare_promote",
    type="primary",
    icon=":material/trophy:",
    disabled=not confirmed or candidate == champion_run,
    on_click=promote,
    args=(candidate,),
)
if "compare_promote_problem" in st.session_state:
    st.warning(st.session_state["compare_promote_problem"], icon=":material/warning:")
if candidate == champion_run:
    st.caption("This run is the champion already.")
promoted = st.session_state.get("compare_promoted")
if promoted:
    st.success(
        f"Run {promoted['run_id'][:8]} is champion version {promoted['model_version']} "
        f"({promoted['uri']}).",
        icon=":material/trophy:",
    )
