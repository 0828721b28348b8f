"""MLflow runs as the Train and Compare pages read them (cached briefly, keyed on the server)."""

import pandas as pd
import streamlit as st

from core.config import Settings
from core.errors import DpeError
from core.tracking import registry
from core.tracking.headline import HEADLINE
from ui import workbench
from ui.format import model_label
from ui.labels import label
from ui.links import experiment_runs_url


@st.cache_data(ttl=30, show_spinner="Reading the runs from MLflow…")
def _runs(tracking_uri: str, experiment: str, _settings: Settings) -> pd.DataFrame:
    return registry.list_runs(_settings)


def list_runs(settings: Settings, experiment: str | None = None):
    """(the experiment's runs, best macro-F1 first; problem)."""
    if experiment and experiment != settings.experiment_name:
        settings = settings.model_copy(update={"experiment_name": experiment})
    try:
        return _runs(settings.tracking_uri, settings.experiment_name, settings), None
    except DpeError as error:
        return pd.DataFrame(columns=list(registry.RUN_COLUMNS)), str(error)


@st.cache_data(ttl=60, show_spinner=False)
def _experiments(tracking_uri: str, _settings: Settings) -> list[str]:
    return workbench.experiments(_settings)


def experiments(settings: Settings) -> list[str]:
    try:
        return _experiments(settings.tracking_uri, settings)
    except DpeError:
        return [settings.experiment_name]


@st.cache_data(max_entries=32, show_spinner="Reading the run from MLflow…")
def _run_view(tracking_uri: str, run_id: str, _settings: Settings) -> dict:
    return workbench.run_view(_settings, run_id)


def run_view(settings: Settings, run_id: str) -> dict:
    return _run_view(settings.tracking_uri, run_id, settings)


@st.cache_data(max_entries=32, show_spinner="Comparing the runs…")
def _compare(tracking_uri: str, run_ids: tuple[str, ...], _settings: Settings) -> dict:
    return workbench.compare_runs(_settings, list(run_ids))


def compare_runs(settings: Settings, run_ids) -> dict:
    return _compare(settings.tracking_uri, tuple(run_ids), settings)


def clear_runs() -> None:
    """After a training run or a promotion."""
    _runs.clear()
    _experiments.clear()


def against_baseline(run: dict) -> str | None:
    """Where a with-consumption run stands against the rule baseline on its own test split,
    in words; None when the comparison does not apply (the rules themselves, another
    feature set, a run without the baseline logged)."""
    if run.get("baseline") != "rules" or run.get("model") == "rules":
        return None
    score, rules = run.get("macro_f1"), run.get("baseline_macro_f1")
    if score is None or rules is None or pd.isna(score) or pd.isna(rules):
        return None
    if score > rules:
        return f"beats the rules by {score - rules:.3f} macro-F1"
    return f"does not beat the rules ({score:.3f} vs {rules:.3f} macro-F1)"


def runs_table(runs: pd.DataFrame, champion_run: str | None) -> pd.DataFrame:
    """The runs as the Compare page lists them: readable columns, best macro-F1 first, what
    ranks them on the left (a narrow screen scrolls to the rest)."""
    runs = runs.sort_values("macro_f1", ascending=False, na_position="last")
    score = {name: pd.to_numeric(runs[name], errors="coerce").round(3) for name in HEADLINE}
    table = pd.DataFrame(
        {
            "Champion": ["★" if run == champion_run else "" for run in runs["run_id"]],
            "Run": runs["run_id"].str[:8],
            "Model": runs["model"].map(model_label),
            label("macro_f1"): score["macro_f1"],
            "Baseline macro-F1": pd.to_numeric(runs["baseline_macro_f1"]).round(3),
        }
    )
    if runs["leaking"].any():
        table["Against the rules"] = [
            against_baseline(row) or "" for row in runs.to_dict("records")
        ]
        table[label("monotonicity_violations")] = pd.to_numeric(runs["monotonicity_violations"])
    for name in ("accuracy", "balanced_accuracy", "log_loss"):
        table[label(name)] = score[name]
    table["Search"] = runs["search"]
    table["Started (UTC)"] = pd.to_datetime(runs["start_time"]).dt.strftime("%Y-%m-%d %H:%M")
    table["Dataset"] = runs["dataset_version"].astype(str).str[:12]
    return table.reset_index(drop=True)


@st.cache_data(ttl=60, show_spinner=False)
def _experiment_id(tracking_uri: str, experiment: str, _settings: Settings) -> str | None:
    client = registry.connect(_settings)
    with registry.mlflow_errors(_settings):
        found = client.get_experiment_by_name(experiment)
    return None if found is None else found.experiment_id


def experiment_id(settings: Settings, experiment: str) -> str | None:
    """The id of an experiment by name (for MLflow UI links); None when unknown or down."""
    try:
        found = _experiment_id(settings.tracking_uri, experiment, settings)
    except DpeError:
        return None
    if found is None:  # not created yet: the first training creates it, so ask again next time
        _experiment_id.clear()
    return found


BACKTEST_METRICS = ("mean_macro_f1", "rules_mean_macro_f1", "mean_accuracy", "rules_mean_accuracy")


@st.cache_data(ttl=30, show_spinner=False)
def _backtests(tracking_uri: str, experiment: str, _settings: Settings) -> pd.DataFrame:
    client = registry.connect(_settings)
    with registry.mlflow_errors(_settings):
        found = client.get_experiment_by_name(experiment)
        found_runs = (
            []
            if found is None
            else client.search_runs(
                [found.experiment_id],
                filter_string="tags.kind = 'backtest'",
                order_by=["attributes.start_time DESC"],
                max_results=200,
            )
        )
    rows = [
        {
            "run_id": run.info.run_id,
            "model": run.data.tags.get("model_family"),
            "features": run.data.tags.get("feature_set"),
            "windows": run.data.params.get("windows"),
            **{name: run.data.metrics.get(name) for name in BACKTEST_METRICS},
        }
        for run in found_runs
    ]
    return pd.DataFrame(rows, columns=["run_id", "model", "features", "windows", *BACKTEST_METRICS])


def backtests_table(settings: Settings, experiment: str) -> pd.DataFrame:
    """The newest back-test of each model and feature set, next to the rules on the same
    windows (empty when none was run, or MLflow does not answer)."""
    try:
        found = _backtests(settings.tracking_uri, experiment, settings)
    except DpeError:
        found = pd.DataFrame()
    if found.empty:
        return found
    newest = found.drop_duplicates(["model", "features"])  # newest first
    table = pd.DataFrame(
        {
            "Model": newest["model"].map(model_label),
            "Feature set": newest["features"],
            "Windows": newest["windows"],
            "Mean macro-F1": newest["mean_macro_f1"].round(3),
            "Rules mean macro-F1": newest["rules_mean_macro_f1"].round(3),
            "Mean accuracy": newest["mean_accuracy"].round(3),
            "Rules mean accuracy": newest["rules_mean_accuracy"].round(3),
        }
    )
    gap = newest["mean_macro_f1"] - newest["rules_mean_macro_f1"]
    table["Against the rules"] = [
        "" if model == "rules" else (f"beats them by {g:.3f}" if g > 0 else "does not beat them")
        for model, g in zip(newest["model"], gap, strict=True)
    ]
    return table.reset_index(drop=True)


def training_runs_url(settings: Settings) -> str:
    """The configured experiment's training runs in the MLflow UI (its list of experiments
    while none was created)."""
    return experiment_runs_url(settings, experiment_id(settings, settings.experiment_name))
