"""Train: one model run (feature set, model family, search, CV folds), tracked in MLflow."""

import streamlit as st

from core.data import warehouse
from core.data.feature_sets import FEATURE_SETS
from core.errors import DpeError
from core.modeling import train
from core.modeling.models import (
    DEFAULT_MODELS,
    FAMILIES,
    NEEDS_CONSUMPTION,
    SEARCHES,
    search_space,
)
from ui import charts, frame, runs
from ui.estimate import training_estimate
from ui.format import (
    BASELINE_LABELS,
    SEARCH_LABELS,
    feature_set_help,
    leakage_note,
    model_label,
    score_delta,
    short,
)
from ui.labels import label
from ui.links import run_url

# Log loss is not compared with a baseline: the baselines give hard labels, whose log
# loss only measures the clipping of a probability of 0.
COMPARED = ("accuracy", "macro_f1", "balanced_accuracy")
SHOWN = (*COMPARED, "log_loss")

context = frame.context()
settings, status = context.settings, context.needed_dataset()

try:
    versions = [row["version"] for row in warehouse.list_versions(settings)]
except DpeError as error:
    st.warning(str(error), icon=":material/hourglass_empty:")
    st.stop()


def untunable_reason(family: str) -> str | None:
    """Why search and CV folds do not apply to `family`, or None when they do."""
    if search_space(family, "grid"):
        return None
    return (
        f"{model_label(family)} has no hyper-parameters to tune: it trains once on the "
        "training part, so there is nothing to search or cross-validate."
    )


def on_model_change() -> None:
    """A family without hyper-parameters shows "no search"; the next family that has some
    gets the default search (grid) back."""
    if untunable_reason(st.session_state["train_model"]):
        st.session_state["train_search"] = "none"
        st.session_state["train_search_forced"] = True
    elif st.session_state.pop("train_search_forced", False):
        st.session_state["train_search"] = "grid"


def on_features_change() -> None:
    """Each feature set preselects its default family (the CLI's)."""
    st.session_state["train_model"] = DEFAULT_MODELS[st.session_state["train_features"]]
    on_model_change()


left, right = st.columns(2)
feature_set = left.selectbox(
    "Feature set",
    list(FEATURE_SETS),
    index=list(FEATURE_SETS).index("building-only"),
    key="train_features",
    help=feature_set_help(),
    on_change=on_features_change,
)
families = [
    family
    for family in FAMILIES
    if family not in NEEDS_CONSUMPTION or FEATURE_SETS[feature_set].has_consumption
]
model = right.selectbox(
    "Model",
    families,
    index=families.index(DEFAULT_MODELS[feature_set]),  # the CLI's defaults
    format_func=model_label,
    key="train_model",
    on_change=on_model_change,
)
untunable = untunable_reason(model)
search = left.selectbox(
    "Hyper-parameter search",
    list(SEARCHES),
    index=list(SEARCHES).index("none" if untunable else "grid"),  # the CLI's default
    format_func=lambda name: SEARCH_LABELS[name],
    key="train_search",
    disabled=untunable is not None,
    help=untunable
    or "The search scores each candidate by macro-F1 with k-fold cross-validation on the "
    "training part.",
)
search = "none" if untunable else search
cv = right.slider(
    "Cross-validation folds",
    2,
    10,
    5,
    key="train_cv",
    disabled=search == "none",
    help=untunable
    or (
        "No search: the model trains once with its default hyper-parameters, nothing is "
        "cross-validated."
        if search == "none"
        else "The training part is cut into this many folds to score each candidate."
    ),
)
if untunable:
    st.caption(f":material/block: Search and cross-validation are off: {untunable}")
dataset = left.selectbox(
    "Dataset version",
    versions,
    format_func=lambda v: f"{v} (current)" if v == status["dataset_version"] else v,
    key="train_dataset",
)
note = leakage_note(feature_set)
if note:
    st.warning(note, icon=":material/water_drop:")
else:
    fields = ", ".join(label(f) for f in FEATURE_SETS[feature_set].fields)
    st.caption(f"`{feature_set}`: {fields}.")

estimate = training_estimate(feature_set, model, search, cv, status["labelled"])
st.caption(f":material/timer: {estimate}")

if st.button("Train", key="train_run", type="primary", icon=":material/play_arrow:"):
    bar = st.progress(0.0, text="starting")

    def progress(fraction: float, message: str) -> None:
        bar.progress(min(1.0, max(0.0, float(fraction))), text=message)

    try:
        trained = train.train(
            settings,
            feature_set,
            model,
            search=search,
            cv=cv,
            dataset_version=dataset,
            progress=progress,
        )
    except DpeError as error:
        bar.empty()
        st.warning(f"Training failed: {error}", icon=":material/warning:")
        st.stop()
    bar.empty()
    st.session_state["train_result"] = trained
    runs.clear_runs()

result = st.session_state.get("train_result")
if result is None:
    st.stop()

try:
    details = runs.run_view(settings, result["run_id"])
except DpeError as error:  # MLflow went away since the run was logged
    st.warning(str(error), icon=":material/warning:")
    details = {}
metrics = result["metrics"]
st.subheader(f"Run `{short(result['run_id'], 8)}`: {model_label(result['model'])}")
split = result.get("split", "random")
tested = (
    f"the newest records, {result['test_from']} to {result['test_to']}"
    if split == "time" and result.get("test_from")
    else "a stratified random hold-out"
)
st.caption(
    f"`{result['feature_set']}` · search: {SEARCH_LABELS.get(result['search'], result['search'])}"
    f" · dataset `{short(result['dataset_version'])}` · {result['train_rows']:,} training rows, "
    f"{result['test_rows']:,} test rows ({tested})."
)
baseline = FEATURE_SETS[result["feature_set"]].baseline
is_baseline = result["model"] == "rules" and baseline == "rules"
for column, name in zip(st.columns(len(SHOWN)), SHOWN, strict=True):
    value = metrics.get(name)
    reference = None if is_baseline else metrics.get(f"baseline_{baseline}_{name}")
    delta, level = None, False
    if name in COMPARED and value is not None and reference is not None:
        delta, level = score_delta(value, reference)
    column.metric(
        label(name),
        "—" if value is None else f"{value:.3f}",
        delta and f"{delta} vs {BASELINE_LABELS[baseline]}",
        delta_color="off" if level else "normal",
        delta_arrow="off" if level else "auto",
    )
if is_baseline:
    st.caption("This run is the rule baseline itself: the official scales applied as they are.")
else:
    st.caption(
        f"Deltas: against the {BASELINE_LABELS[baseline]} on the same test split "
        + ("(the official scales)." if baseline == "rules" else "(always the most frequent label).")
    )
verdict = runs.against_baseline(
    {
        **metrics,
        "model": result["model"],
        "baseline": baseline,
        "baseline_macro_f1": metrics.get(f"baseline_{baseline}_macro_f1"),
    }
)
if verdict and verdict.startswith("does not"):
    st.warning(
        f"This model {verdict} on the same test split: the official scales alone predict "
        "as well, so it adds nothing over them.",
        icon=":material/rule:",
    )
elif verdict:
    st.success(f"This model {verdict} on the same test split.", icon=":material/rule:")
st.link_button(
    "Open the run in the MLflow UI",
    run_url(settings, details.get("experiment_id"), result["run_id"]),
    icon=":material/open_in_new:",
)

left, right = st.columns(2)
with left:
    confusion = details.get("confusion")
    if confusion:
        normalised = st.toggle("Share of each true label", key="train_confusion_normalised")
        st.plotly_chart(
            charts.confusion_matrix(
                confusion["labels"], confusion["counts"], normalised=normalised
            ),
            key="train_chart_confusion",
        )
    per_class = details.get("per_class") or {}
    if per_class:
        st.dataframe(charts.per_class_table(per_class), hide_index=True, key="train_per_class")
with right:
    importance = details.get("importance")
    if importance is not None and not importance.empty:
        st.plotly_chart(charts.importance_bars(importance), key="train_chart_importance")
        unused = int((importance["importance"] == 0).sum())
        st.caption(
            "Macro-F1 lost when the field is shuffled on the test split (permutation)."
            + (
                f" {unused} of the {len(importance)} fields change nothing when shuffled "
                "(the model does not use them): they have no bar."
                if unused
                else ""
            )
        )
frame.page_link("compare", "Compare this run with others")
