"""Compare: empty state; building-only and label-leaking runs ranked apart; side by side;
the rule baseline said plainly; promotion after a confirmation, never of the champion."""

import plotly.io
import pytest

from core.config import get_settings
from core.storage import Store
from core.tracking import champion_store, registry
from tests.support.pages import assert_clean, open_page, texts

PAGE = "views/compare.py"
BUILDING, LEAKING, PARAMS = 0, 1, 2  # the page's dataframes, in order


def test_empty_install_says_there_are_no_runs(empty_env):
    app = open_page(PAGE)
    assert_clean(app)
    assert "No runs yet" in texts(app.info)
    assert "No champion yet" in texts(app.markdown)


def test_runs_ranked_by_kind_with_the_champion_shown(data_env, data_home):
    _, built = data_home
    app = open_page(PAGE)
    assert_clean(app)
    champion = built["promote"]["model_version"]
    assert f"v{champion}" in texts(app.markdown)
    headers = [s.value for s in app.subheader]
    assert "Building-only runs" in headers
    assert "Runs with the consumption (label-leaking)" in headers
    building = app.dataframe[BUILDING].value
    leaking = app.dataframe[LEAKING].value
    assert set(building["Run"]) == {built["train"]["run_id"][:8]}
    assert set(leaking["Run"]) == {built["rules"]["run_id"][:8]}
    assert list(building["Champion"]) == ["★"]
    assert "Monotonicity violations" in leaking.columns
    # Readable column names and model names: no snake_case reaches the table.
    for table in (building, leaking):
        assert not [c for c in table.columns if "_" in c], list(table.columns)
    assert set(building["Model"]) == {"Logistic regression"}
    assert len(app.multiselect(key="compare_selected").value) == 2
    # Back-test bars first (mean, whiskers to the worst and best window), then the time split.
    backtest, time_split, _ = (plotly.io.from_json(c.proto.spec) for c in app.get("plotly_chart"))
    assert backtest.layout.title.text.startswith("Back-test")
    (bars,) = [bar for bar in backtest.data if built["train"]["run_id"][:8] in bar.name]
    assert list(bars.x) == ["Accuracy", "Macro-F1", "Set coverage", "Mean set size"]
    run = registry.run_details(data_env, built["train"]["run_id"])["headline"]["macro_f1"]
    assert bars.y[1] == pytest.approx(run["mean"])
    assert bars.error_y.arrayminus[1] == pytest.approx(run["mean"] - run["min"])
    assert time_split.layout.title.text.startswith("Time split")
    # The runs table leads with the back-test mean and its range.
    assert list(building.columns[3:5]) == ["Back-test macro-F1", "Back-test range"]
    assert building["Back-test range"].iloc[0] == f"{run['min']:.3f}–{run['max']:.3f}"
    params = app.dataframe[PARAMS].value
    assert "model" in params.index and params.shape[1] == 2
    app.radio(key="compare_per_class_metric").set_value("recall").run()
    assert_clean(app)


def test_mlflow_links_go_to_training_runs_and_model_versions(data_env):
    app = open_page(PAGE)
    urls = {b.proto.label: b.proto.url for b in app.get("link_button")}
    assert urls["Training runs in MLflow"].endswith("/runs")
    assert "/#/experiments/" in urls["Training runs in MLflow"]
    assert urls["Registered model versions in MLflow"].endswith("/#/models/dpe")


def test_filters_narrow_the_runs(data_env, data_home):
    _, built = data_home
    app = open_page(PAGE)
    app.multiselect(key="compare_filter_features").set_value(["with-consumption"]).run()
    assert_clean(app)
    assert len(app.dataframe) == 1  # only the label-leaking table is left
    assert set(app.dataframe[0].value["Run"]) == {built["rules"]["run_id"][:8]}
    assert "Choose at least two runs" in texts(app.info)


def test_a_with_consumption_model_is_measured_against_the_rules(own_data_env, data_home):
    from core.modeling import train

    _, built = data_home
    trained = train.train(own_data_env, "with-consumption", "logreg", search="none")
    metrics = trained["metrics"]
    beats = metrics["macro_f1"] > metrics["baseline_rules_macro_f1"]
    app = open_page(PAGE)
    assert_clean(app)
    verdicts = app.dataframe[LEAKING].value.set_index("Run")["Against the rules"]
    expected = "beats the rules" if beats else "does not beat the rules"
    assert verdicts[trained["run_id"][:8]].startswith(expected)
    assert verdicts[built["rules"]["run_id"][:8]] == ""  # the rules themselves
    app.selectbox(key="compare_promote_run").set_value(trained["run_id"]).run()
    assert ("does not beat the rules" in texts(app.warning)) == (not beats)


def test_promotion_needs_a_confirmation_and_never_offers_the_champion(own_data_env, data_home):
    _, built = data_home
    rules_run, champion_run = built["rules"]["run_id"], built["train"]["run_id"]
    app = open_page(PAGE)
    assert champion_run not in app.selectbox(key="compare_promote_run").options
    app.selectbox(key="compare_promote_run").set_value(rules_run).run()
    assert app.button(key="compare_promote").disabled
    app.checkbox(key="compare_promote_confirm").check().run()
    assert not app.button(key="compare_promote").disabled
    app.button(key="compare_promote").click().run()
    assert_clean(app)
    assert f"Run {rules_run[:8]} is champion version" in texts(app.success)
    manifest = champion_store.current(Store(get_settings())).to_dict()
    assert manifest["run_id"] == rules_run
    assert f"v{manifest['model_version']}" in texts(app.markdown)
    # The new champion is not offered to replace itself.
    offered = app.selectbox(key="compare_promote_run")
    assert rules_run not in offered.options
    assert rules_run[:8] not in app.checkbox(key="compare_promote_confirm").label


def test_mlflow_down_is_a_warning_not_an_error(empty_env, monkeypatch):
    from tests.support.servers import free_port

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{free_port()}")
    get_settings.cache_clear()
    app = open_page(PAGE)
    assert_clean(app)
    assert "unreachable" in texts(app.warning)


def test_a_backtest_shows_next_to_the_rules(own_data_env):
    from core.modeling.backtest import backtest

    result = backtest(own_data_env, "building-only", "logreg", windows=2)
    app = open_page(PAGE)
    assert_clean(app)
    assert "Back-tests on later records" in [s.value for s in app.subheader]
    tables = [d.value for d in app.dataframe if "Rules mean macro-F1" in d.value.columns]
    assert len(tables) == 1
    row = tables[0].iloc[0]
    assert row["Model"] == "Logistic regression" and row["Feature set"] == "building-only"
    assert row["Mean macro-F1"] == round(result.mean_macro_f1, 3)
    assert row["Rules mean macro-F1"] == round(result.rules_mean_macro_f1, 3)
    beats = result.mean_macro_f1 > result.rules_mean_macro_f1
    assert row["Against the rules"].startswith("beats" if beats else "does not beat")
    # A back-test trained no model: it is not listed with the runs to promote.
    assert result.run_id not in app.selectbox(key="compare_promote_run").options
