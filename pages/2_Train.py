"""Train: one model run (feature set, model family, search, CV folds), tracked in MLflow."""

import streamlit as st

from core import train, warehouse
from core.errors import DpeError
from core.feature_sets import FEATURE_SETS
from ui import charts, common

MODELS = {
    "rules": "Rule baseline (the official scales)",
    "logreg": "Logistic regression",
    "rf": "Random forest",
    "hgb": "Histogram gradient boosting",
    "scale": "Learned scale + official thresholds (monotone; with consumption)",
}
SEARCHES = {
    "none": "none: default hyper-parameters",
    "grid": "grid search",
    "random": "random search (6 candidates)",
}

settings = common.setup("Train", ":material/science:")
st.title("Train a model")

status, problem = common.dataset_status(settings)
if status is None:
    if problem:
        st.warning(problem, icon=":material/hourglass_empty:")
    else:
        common.no_data("Train")
    st.stop()

try:
    versions = [row["version"] for row in warehouse.list_versions(settings)]
except DpeError as error:
    st.warning(str(error), icon=":material/hourglass_empty:")
    st.stop()
left, right = st.columns(2)
feature_set = left.selectbox(
    "Feature set",
    list(FEATURE_SETS),
    index=list(FEATURE_SETS).index("building-only"),
    key="train_features",
    help=common.feature_set_help(),
)
model = right.selectbox(
    "Model family", list(MODELS), index=2, format_func=MODELS.get, key="train_model"
)
search = left.selectbox(
    "Hyper-parameter search",
    list(SEARCHES),
    format_func=SEARCHES.get,
    key="train_search",
    disabled=model == "rules",
    help="The search runs k-fold cross-validation on the training split.",
)
cv = right.slider(
    "Cross-validation folds",
    2,
    10,
    5,
    key="train_cv",
    disabled=search == "none" or model == "rules",
)
dataset = left.selectbox(
    "Dataset version",
    versions,
    format_func=lambda v: f"{v} (current)" if v == status["dataset_version"] else v,
    key="train_dataset",
)
note = common.leakage_note(feature_set)
if note:
    st.warning(note, icon=":material/water_drop:")
else:
    st.caption(f"`{feature_set}`: {', '.join(f'`{f}`' for f in FEATURE_SETS[feature_set].fields)}.")

if st.button("Train", key="train_run", type="primary", icon=":material/play_arrow:"):
    bar = st.progress(0.0, text="starting")

    def progress(fraction: float, message: str | None = None) -> None:
        bar.progress(min(1.0, max(0.0, float(fraction))), text=message or f"{fraction:.0%}")

    try:
        result = train.train(
            settings,
            feature_set,
            model,
            search="none" if model == "rules" else search,
            cv=cv,
            dataset_version=dataset,
            progress=progress,
        )
    except DpeError as error:
        bar.empty()
        st.warning(f"Training failed: {error}", icon=":material/warning:")
        st.stop()
    bar.progress(1.0, text="done")
    st.session_state["train_result"] = result
    common.clear_runs()

result = st.session_state.get("train_result")
if result is None:
    st.stop()

try:
    details = common.run_view(settings, result["run_id"])
except DpeError as error:  # MLflow went away since the run was logged
    st.warning(str(error), icon=":material/warning:")
    details = {}
metrics = result["metrics"]
st.subheader(f"Run `{common.short(result['run_id'], 8)}`: {MODELS[result['model']]}")
st.caption(
    f"`{result['feature_set']}` · search {result['search']} · dataset "
    f"`{common.short(result['dataset_version'])}` · {result['train_rows']:,} training rows, "
    f"{result['test_rows']:,} test rows (stratified hold-out)."
)
baseline = FEATURE_SETS[result["feature_set"]].baseline
shown = [
    ("accuracy", "Accuracy"),
    ("macro_f1", "Macro-F1"),
    ("balanced_accuracy", "Balanced accuracy"),
    ("log_loss", "Log loss"),
]
columns = st.columns(len(shown))
for column, (name, label) in zip(columns, shown, strict=True):
    value = metrics.get(name)
    reference = metrics.get(f"baseline_{baseline}_{name}")
    column.metric(
        label,
        "—" if value is None else f"{value:.3f}",
        None if reference is None or value is None else f"{value - reference:+.3f} vs {baseline}",
        delta_color="inverse" if name == "log_loss" else "normal",
    )
st.caption(
    f"Deltas: against the {baseline} baseline on the same test split "
    + ("(the official scales)." if baseline == "rules" else "(always the most frequent label).")
)
st.link_button(
    "Open the run in the MLflow UI",
    common.run_url(settings, details.get("experiment_id"), result["run_id"]),
    icon=":material/open_in_new:",
)

left, right = st.columns(2)
with left:
    st.markdown("**Confusion matrix** (test split)")
    if details.get("confusion_png"):
        st.image(details["confusion_png"])
    per_class = details.get("per_class") or {}
    if per_class:
        st.dataframe(charts.per_class_table(per_class), hide_index=True, key="train_per_class")
with right:
    importance = details.get("importance")
    if importance is not None and not importance.empty:
        st.plotly_chart(charts.importance_bars(importance), key="train_chart_importance")
        st.caption("Macro-F1 lost when the field is shuffled on the test split (permutation).")
st.page_link(
    common.PAGES["compare"], label="Compare this run with others", icon=":material/compare_arrows:"
)
