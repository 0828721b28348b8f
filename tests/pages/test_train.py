"""Train: empty state; a small training run completes with its metrics and figures, and
then appears in Compare."""

from tests.pages.conftest import assert_clean, open_page, texts

PAGE = "pages/2_Train.py"


def test_empty_install_says_there_is_no_data(empty_env):
    app = open_page(PAGE)
    assert_clean(app)
    assert "no data yet" in texts(app.info).lower()
    assert not app.button


def test_leakage_of_with_consumption_is_explained(data_env):
    app = open_page(PAGE)
    assert_clean(app)
    assert app.selectbox(key="train_features").value == "building-only"
    assert not app.warning
    app.selectbox(key="train_features").set_value("with-consumption").run()
    assert "threshold" in texts(app.warning)


def test_a_small_run_completes_and_appears_in_compare(own_data_env):
    app = open_page(PAGE)
    assert app.selectbox(key="train_model").value == "rf"
    assert app.selectbox(key="train_search").value == "none"
    app.button(key="train_run").click()
    app.run()
    assert_clean(app)
    result = app.session_state["train_result"]
    assert result["model"] == "rf" and result["feature_set"] == "building-only"
    run_id = result["run_id"]
    assert app.subheader[0].value.startswith(f"Run `{run_id[:8]}`")
    metrics = {m.label: m.value for m in app.metric}
    assert 0 <= float(metrics["Macro-F1"]) <= 1
    assert "vs majority" in str([m.proto.delta for m in app.metric])
    assert app.get("imgs") or app.get("image")  # the confusion matrix
    assert app.get("plotly_chart")  # the field importance
    link = app.get("link_button")
    assert any(f"/runs/{run_id}" in b.proto.url for b in link)

    app.switch_page("pages/3_Compare.py").run()
    assert_clean(app)
    listed = app.dataframe[0].value
    assert run_id[:8] in set(listed["run"])
