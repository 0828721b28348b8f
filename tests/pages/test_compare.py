"""Compare: empty state; runs side by side; promotion after a confirmation."""

from tests.pages.conftest import assert_clean, open_page, texts

PAGE = "pages/3_Compare.py"


def test_empty_install_says_there_are_no_runs(empty_env):
    app = open_page(PAGE)
    assert_clean(app)
    assert "No runs yet" in texts(app.info)
    assert "No champion yet" in texts(app.markdown)


def test_runs_side_by_side_with_the_champion_shown(data_env, data_home):
    _, built = data_home
    app = open_page(PAGE)
    assert_clean(app)
    champion = built["promote"]["model_version"]
    assert f"v{champion}" in texts(app.markdown)
    listed = app.dataframe[0].value
    assert {built["train"]["run_id"][:8], built["rules"]["run_id"][:8]} <= set(listed["run"])
    assert "★" in set(listed[""])
    assert len(app.multiselect(key="compare_selected").value) == 2
    assert len(app.get("plotly_chart")) == 2  # headline metrics, per-class bars
    params = app.dataframe[1].value
    assert "model" in params.index and params.shape[1] == 2
    app.radio(key="compare_per_class_metric").set_value("recall").run()
    assert_clean(app)


def test_filters_narrow_the_runs(data_env, data_home):
    _, built = data_home
    app = open_page(PAGE)
    app.multiselect(key="compare_filter_features").set_value(["with-consumption"]).run()
    assert_clean(app)
    assert set(app.dataframe[0].value["run"]) == {built["rules"]["run_id"][:8]}
    assert "Choose at least two runs" in texts(app.info)


def test_promotion_needs_a_confirmation(own_data_env, data_home):
    _, built = data_home
    rules_run = built["rules"]["run_id"]
    app = open_page(PAGE)
    app.selectbox(key="compare_promote_run").set_value(rules_run).run()
    assert app.button(key="compare_promote").disabled
    app.checkbox(key="compare_promote_confirm").check().run()
    assert not app.button(key="compare_promote").disabled
    app.button(key="compare_promote").click().run()
    assert_clean(app)
    assert f"Run {rules_run[:8]} is champion version" in texts(app.success)
    from core import registry
    from core.config import get_settings

    manifest = registry.current_champion(get_settings())
    assert manifest["run_id"] == rules_run
    assert f"v{manifest['model_version']}" in texts(app.markdown)


def test_mlflow_down_is_a_warning_not_an_error(empty_env, monkeypatch):
    from core.config import get_settings
    from tests.servers import free_port

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{free_port()}")
    get_settings.cache_clear()
    app = open_page(PAGE)
    assert_clean(app)
    assert "unreachable" in texts(app.warning)
