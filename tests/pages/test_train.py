"""Train: empty state; the CLI's default search (grid) runs to completion from the page with
its time estimate; metrics compared with the right baseline; the run appears in Compare."""

from tests.support.pages import assert_clean, open_page, texts
from ui.format import model_label

PAGE = "views/train.py"


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


def test_defaults_are_the_clis_with_a_time_estimate(data_env):
    from sklearn.model_selection import ParameterGrid

    from core.modeling.models import DEFAULT_MODELS, GRIDS

    app = open_page(PAGE)
    model = DEFAULT_MODELS["building-only"]
    assert app.selectbox(key="train_model").value == model
    assert app.selectbox(key="train_search").value == "grid"
    estimate = texts(app.caption)
    assert "Roughly" in estimate
    assert f"{len(ParameterGrid(GRIDS[model]))} candidates × 5 folds" in estimate
    app.selectbox(key="train_search").set_value("none").run()
    assert "one fit" in texts(app.caption)
    # Families that read the consumption are offered with it only.
    assert model_label("sector-scale") not in app.selectbox(key="train_model").options
    app.selectbox(key="train_features").set_value("with-consumption").run()
    assert model_label("sector-scale") in app.selectbox(key="train_model").options


def test_each_feature_set_preselects_its_default_and_says_why_search_is_off(data_env):
    """Issue 23.3: the page kept hgb when the feature set became with-consumption, and took
    a grid search for families that have nothing to tune, silently ignored."""
    app = open_page(PAGE)
    app.selectbox(key="train_features").set_value("with-consumption").run()
    assert_clean(app)
    assert app.selectbox(key="train_model").value == "sector-scale"
    search, folds = app.selectbox(key="train_search"), app.slider(key="train_cv")
    assert search.value == "none" and search.disabled and folds.disabled
    why = "has no hyper-parameters to tune"
    assert why in texts(app.caption) and why in search.help and why in folds.help
    assert "one fit" in texts(app.caption)
    # A family with hyper-parameters gets the default search back; the rules have none.
    app.selectbox(key="train_model").set_value("hgb").run()
    search = app.selectbox(key="train_search")
    assert search.value == "grid" and not search.disabled
    assert not app.slider(key="train_cv").disabled and why not in texts(app.caption)
    app.selectbox(key="train_model").set_value("rules").run()
    assert app.selectbox(key="train_search").value == "none"
    app.selectbox(key="train_features").set_value("building-only").run()
    assert app.selectbox(key="train_model").value == "hgb"
    assert app.selectbox(key="train_search").value == "grid"


def test_a_grid_search_completes_and_appears_in_compare(own_data_env):
    """The page's default search with its Streamlit progress bar: the search's worker
    processes must never receive the bar (it cannot be unpickled there)."""
    app = open_page(PAGE)
    app.selectbox(key="train_model").set_value("logreg").run()
    assert app.selectbox(key="train_search").value == "grid"
    app.button(key="train_run").click()
    app.run()
    assert_clean(app)
    result = app.session_state["train_result"]
    assert result["model"] == "logreg" and result["search"] == "grid"
    assert result["feature_set"] == "building-only"
    run_id = result["run_id"]
    assert app.subheader[0].value.startswith(f"Run `{run_id[:8]}`")
    metrics = {m.label: m for m in app.metric}
    assert 0 <= float(metrics["Macro-F1"].value) <= 1
    assert "vs majority baseline" in metrics["Macro-F1"].proto.delta
    assert not metrics["Log loss"].proto.delta  # no baseline gives a meaningful log loss
    assert app.get("plotly_chart")  # the confusion matrix and the field importance
    link = app.get("link_button")
    assert any(f"/runs/{run_id}" in b.proto.url for b in link)

    app.switch_page("views/compare.py").run()
    assert_clean(app)
    assert run_id[:8] in set(app.dataframe[0].value["Run"])


def test_the_rule_baseline_is_not_compared_with_itself(own_data_env):
    app = open_page(PAGE)
    app.selectbox(key="train_features").set_value("with-consumption").run()
    app.selectbox(key="train_model").set_value("rules").run()
    app.button(key="train_run").click()
    app.run()
    assert_clean(app)
    assert not [m.proto.delta for m in app.metric if m.proto.delta]
    assert "rule baseline itself" in texts(app.caption)
