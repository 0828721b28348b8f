"""Explore: empty state; with data, KPIs and charts, and filters that change the numbers."""

from tests.pages.conftest import assert_clean, open_page, texts

PAGE = "pages/1_Explore.py"


def open_tab(app, tab: str):
    app.session_state["explore_tab"] = tab
    return app.run()


def metrics(app) -> dict:
    return {m.label: m.value for m in app.metric}


def count(value: str) -> int:
    return int(value.replace(",", ""))


def test_empty_install_says_there_is_no_data(empty_env):
    app = open_page(PAGE)
    assert_clean(app)
    assert "no data yet" in texts(app.info).lower()
    assert not app.metric


def test_kpis_charts_and_records(data_env, data_home):
    _, built = data_home
    app = open_page(PAGE)
    assert_clean(app)
    valid = built["ingest"]["rows"] - built["ingest"]["rejected"]
    assert count(metrics(app)["Records"]) == valid
    assert count(metrics(app)["Labelled"]) <= valid
    # Only the open tab draws: labels and the label x period heatmap first.
    drawn = {"Labels": len(app.get("plotly_chart"))}
    for tab in ("Consumption", "Map", "Missing values", "Records"):
        open_tab(app, tab)
        assert_clean(app)
        drawn[tab] = len(app.get("plotly_chart"))
    assert drawn == {"Labels": 2, "Consumption": 2, "Map": 2, "Missing values": 1, "Records": 0}
    assert len(app.dataframe) == 1 and 0 < len(app.dataframe[0].value) <= 200
    assert app.get("download_button")


def test_a_filter_changes_the_numbers(data_env):
    app = open_page(PAGE)
    before = metrics(app)
    assert before["Labels A–B"] != "100%"
    app.multiselect(key="explore_labels").set_value(["A", "B"])
    app.run()
    assert_clean(app)
    after = metrics(app)
    assert count(after["Records"]) < count(before["Records"])
    assert after["Labels A–B"] == "100%" and after["Labels F–G"] == "0%"
    # Every record in the table now carries label A or B.
    open_tab(app, "Records")
    assert set(app.dataframe[0].value["Étiquette"]) <= {"A", "B"}


def test_sector_and_surface_filters_combine(data_env):
    app = open_page(PAGE)
    total = count(metrics(app)["Records"])
    sector = app.multiselect(key="explore_secteurs").options[0]
    app.multiselect(key="explore_secteurs").set_value([sector]).run()
    one_sector = count(metrics(app)["Records"])
    assert 0 < one_sector < total
    low, high = app.slider(key="explore_surface").value
    app.slider(key="explore_surface").set_value((low, low + (high - low) / 10)).run()
    assert_clean(app)
    assert count(metrics(app)["Records"]) < one_sector
