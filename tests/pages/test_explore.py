"""Explore: empty state; with data, KPIs and charts, and filters that change the numbers."""

import json

from tests.support.pages import assert_clean, open_page, texts

PAGE = "views/explore.py"


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
    assert set(app.dataframe[0].value["label"]) <= {"A", "B"}


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


def figures(app) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in app.get("plotly_chart")]


def test_charts_have_clean_ticks_a_0_to_1_share_scale_and_readable_words(data_env):
    """Issue 15.8: whole-number count ticks, the period heatmap's share on 0–1 with its
    counts, log axes labelled 1, 10, 100… only, English labels rather than field names."""
    app = open_page(PAGE)
    assert_clean(app)
    filters = {w.key: w.label for w in app.multiselect}
    assert filters["explore_secteurs"] == "Activity sector"
    assert filters["explore_periodes"] == "Construction period"
    labels, period = figures(app)
    assert labels["layout"]["yaxis"]["tickformat"] == ",d"
    assert "no label" in labels["data"][0]["x"] and "étiquette" not in json.dumps(
        labels, ensure_ascii=False
    )
    heat = period["data"][0]
    assert (heat["zmin"], heat["zmax"]) == (0.0, 1.0)
    assert all("%<br>(" in cell for row in heat["text"] for cell in row)

    open_tab(app, "Consumption")
    assert_clean(app)
    for figure in figures(app):
        axis = figure["layout"]["yaxis"]
        assert axis["type"] == "log"
        assert set(axis["ticktext"]) <= {"0.1", "1", "10", "100", "1,000", "10,000", "100,000"}


def test_records_show_readable_headers_dates_as_dates_and_blank_for_missing(data_env):
    """Issue 15.8: no `None` and no `2024-02-13 00:00:00` in the records table."""
    app = open_page(PAGE)
    open_tab(app, "Records")
    assert_clean(app)
    table = app.dataframe[0]
    assert table.proto.placeholder == ""
    config = json.loads(table.proto.columns)
    headers = {column: entry["label"] for column, entry in config.items() if "label" in entry}
    assert set(headers) == set(table.value.columns)
    assert headers["label"] == "DPE label" and headers["secteur"] == "Activity sector"
    assert not any("_" in header for header in headers.values()), headers
    assert config["date_dpe"]["type_config"] == {"type": "date", "format": "YYYY-MM-DD"}
