"""Compare: runs from MLflow, building-only and label-leaking ones ranked apart; side by
side; promote one to champion after a confirmation."""

import pandas as pd
import streamlit as st

from core.errors import DpeError
from core.modeling.evaluate import HEADLINE
from core.tracking import registry
from ui import charts, frame, runs, status
from ui.format import model_label, short
from ui.links import experiment_runs_url, model_versions_url

GROUPS = {
    False: (
        "Building-only runs",
        "What a manager knows before any diagnostic; compared with the majority baseline.",
    ),
    True: (
        "Runs with the consumption (label-leaking)",
        "The label is a threshold of the consumption on the official scales: these runs "
        "measure how well a model rediscovers the scales, so each is compared with the rule "
        "baseline on its own test split.",
    ),
}
# Wide enough for each header: a narrow screen scrolls the table, never cuts a name.
NUMBER_COLUMNS = {
    name: st.column_config.NumberColumn(name, format="%.3f", width=width, help=help_text)
    for name, width, help_text in (
        (
            "Back-test macro-F1",
            150,
            "Mean over the back-test windows: what the model did on records newer than its "
            "training, each window scored by a copy trained on the records before it.",
        ),
        ("Back-test accuracy", 150, None),
        ("Set coverage", 110, "Back-test: share of label sets holding the true label (0.90)."),
        ("Mean set size", 120, "Back-test: labels per set at coverage 0.90."),
        ("Macro-F1", 80, "On the time split (the newest records, one window)."),
        ("Baseline macro-F1", 140, None),
        ("Accuracy", 80, None),
        ("Balanced accuracy", 140, None),
        ("Log loss", 75, None),
    )
}
COLUMNS = {
    **NUMBER_COLUMNS,
    "Champion": st.column_config.TextColumn("Champion", width=80),
    "Model": st.column_config.TextColumn("Model", width=190),
    "Back-test range": st.column_config.TextColumn("Back-test range", width=120),
    "Against the rules": st.column_config.TextColumn("Against the rules", width=300),
    "Monotonicity violations": st.column_config.NumberColumn(
        "Monotonicity violations", format="%d", width=180
    ),
    "Started (UTC)": st.column_config.TextColumn("Started (UTC)", width=130),
}

context = frame.context()
settings, manifest = context.settings, context.champion
champion_run = (manifest or {}).get("run_id")

with st.container(border=True):
    if manifest:
        metrics = manifest.get("metrics") or {}
        scores = ", ".join(
            f"{label} {metrics[name]:.3f}"
            + (
                f" ({metrics[name + '_min']:.3f}–{metrics[name + '_max']:.3f})"
                if name.startswith("backtest_")
                else ""
            )
            for name, label in (
                ("backtest_macro_f1", "back-test macro-F1"),
                ("backtest_accuracy", "accuracy"),
                ("backtest_coverage", "set coverage"),
            )
            if isinstance(metrics.get(name), int | float)
        ) or ", ".join(
            f"{label} {metrics[name]:.3f} (time split)"
            for name, label in (("macro_f1", "macro-F1"), ("accuracy", "accuracy"))
            if isinstance(metrics.get(name), int | float)
        )
        st.markdown(
            f":material/trophy: **Current champion**: {manifest.get('registered_model', 'dpe')} "
            f"v{manifest.get('model_version')} · run `{short(champion_run, 8)}` "
            f"· {model_label(manifest.get('model_family'))} `{manifest.get('feature_set', '')}`"
            + (f" · {scores}" if scores else "")
        )
    elif context.champion_problem:
        st.warning(context.champion_problem, icon=":material/warning:")
    else:
        st.markdown(":material/trophy: **No champion yet**: promote a run below.")

names = runs.experiments(settings)
experiment = names[0]
if len(names) > 1:
    experiment = st.selectbox(
        "Experiment",
        names,
        key="compare_experiment",
        help="MLflow experiments; training logs to DPE_EXPERIMENT_NAME.",
    )
all_runs, problem = runs.list_runs(settings, experiment)
if problem:
    st.warning(problem, icon=":material/warning:")
    st.stop()
links = st.columns(2)
links[0].link_button(
    "Training runs in MLflow",
    experiment_runs_url(settings, runs.experiment_id(settings, experiment)),
    icon=":material/open_in_new:",
)
links[1].link_button(
    "Registered model versions in MLflow",
    model_versions_url(settings),
    icon=":material/open_in_new:",
)
if all_runs.empty:
    st.info("No runs yet: train a model first.", icon=":material/science:")
    frame.page_link("train")
    st.stop()

# --- filters -----------------------------------------------------------------------------
filters = {"features": "Feature set", "dataset_version": "Dataset version", "model": "Model"}
shown = all_runs
for column, (name, label) in zip(st.columns(len(filters)), filters.items(), strict=True):
    values = sorted(all_runs[name].dropna().astype(str).unique())
    chosen = column.multiselect(
        label,
        values,
        key=f"compare_filter_{name}",
        placeholder="all",
        format_func=model_label if name == "model" else str,
    )
    if chosen:
        shown = shown[shown[name].astype(str).isin(chosen)]
if shown.empty:
    st.info("No run matches these filters.", icon=":material/filter_alt_off:")
    st.stop()

# --- the runs, ranked within their kind ------------------------------------------------------
for leaking, (title, caption) in GROUPS.items():
    group = shown[shown["leaking"] == leaking]
    if group.empty:
        continue
    st.subheader(title)
    st.caption(caption)
    st.dataframe(
        runs.runs_table(group, champion_run),
        hide_index=True,
        column_config=COLUMNS,
        key=f"compare_runs_{'leaking' if leaking else 'building'}",
    )


def describe(run_id: str) -> str:
    row = all_runs.loc[all_runs["run_id"] == run_id].iloc[0]
    score, where = row.get("backtest_macro_f1"), "back-test"
    if pd.isna(score):
        score, where = row.get("macro_f1"), "time split"
    score = f" · macro-F1 {score:.3f} ({where})" if pd.notna(score) else ""
    crown = " ★ champion" if run_id == champion_run else ""
    return f"{model_label(row.get('model'))} · {row.get('features')}{score} · {run_id[:8]}{crown}"


backtests = runs.backtests_table(settings, experiment)
if not backtests.empty:
    st.subheader("Back-tests on later records")
    st.caption(
        "Rolling origin: each window trains on the records before it and tests on the next "
        "ones by date; the rule model is scored on the same windows. `python -m core backtest` "
        "runs one."
    )
    st.dataframe(backtests, hide_index=True, key="compare_backtests")


# --- side by side ------------------------------------------------------------------------
st.subheader("Side by side")
ranked = shown["run_id"].tolist()  # list_runs ranks them: back-test macro-F1 first
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
        comparison = runs.compare_runs(settings, selected)
    except DpeError as error:
        st.warning(str(error), icon=":material/warning:")
        st.stop()
    if not comparison["backtest"].empty:
        st.plotly_chart(charts.backtest_bars(comparison["backtest"]), key="compare_chart_backtest")
    metric_names = [m for m in HEADLINE if m in comparison["metrics"]]
    st.plotly_chart(
        charts.metric_bars(comparison["metrics"], metric_names), key="compare_chart_metrics"
    )
    per_class = comparison["per_class"]
    if not per_class.empty:
        metric = st.radio(
            "Per class",
            sorted(per_class["metric"].unique()),
            horizontal=True,
            format_func=str.capitalize,
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
def promote(run_id: str) -> None:
    """The button's callback: promote, remember the answer, untick the confirmation."""
    st.session_state["compare_promote_confirm"] = False
    st.session_state.pop("compare_promote_problem", None)
    try:
        st.session_state["compare_promoted"] = registry.promote(settings, run_id)
    except DpeError as error:
        st.session_state["compare_promote_problem"] = f"Promotion failed: {error}"
        return
    status.clear_status()
    runs.clear_runs()


def confirmation(run_id: str) -> str:
    replaced = f" It replaces v{manifest.get('model_version')}." if manifest else ""
    return (
        f"I confirm: register run {run_id[:8]} as the new champion, served by the API and the "
        f"Predict pages.{replaced}"
    )


st.subheader("Promote a champion")
promoted = st.session_state.get("compare_promoted")
if promoted:
    st.success(
        f"Run {promoted['run_id'][:8]} is champion version {promoted['model_version']} "
        f"({promoted['uri']}).",
        icon=":material/trophy:",
    )
if "compare_promote_problem" in st.session_state:
    st.warning(st.session_state["compare_promote_problem"], icon=":material/warning:")
candidates = [run for run in ranked if run != champion_run]
if not candidates:
    st.caption("The champion is the only run shown: train another to challenge it.")
    st.stop()
candidate = st.selectbox(
    "Run to promote", candidates, format_func=describe, key="compare_promote_run"
)
row = all_runs.loc[all_runs["run_id"] == candidate].iloc[0].to_dict()
verdict = runs.against_baseline(row)
if verdict and verdict.startswith("does not"):
    st.warning(
        f"This model {verdict} on the same test split: the official scales alone "
        "predict as well. Promote it only for a reason the scores do not show.",
        icon=":material/rule:",
    )
if row.get("leaking"):
    st.caption(
        "A with-consumption champion needs the consumption of a diagnostic to predict: "
        "it estimates the label of a building that was already diagnosed."
    )
confirmed = st.checkbox(confirmation(candidate), key="compare_promote_confirm")
st.button(
    "Promote to champion",
    key="compare_promote",
    type="primary",
    icon=":material/trophy:",
    disabled=not confirmed,
    on_click=promote,
    args=(candidate,),
)
