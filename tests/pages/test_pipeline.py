"""The Pipeline page (AppTest): empty state, a pass run from the button with its decision and
history, and the last decision on Home."""

from core.config import get_settings
from tests.support.pages import assert_clean, open_page, texts
from tests.support.servers import free_port
from tooling.synth import write_csv

PAGE = "views/pipeline.py"


def dead_airflow(monkeypatch) -> str:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    monkeypatch.setenv("DPE_AIRFLOW_UI_URL", url)
    get_settings.cache_clear()
    return url


def test_no_pass_yet_and_airflow_down_is_no_error(empty_env, monkeypatch):
    url = dead_airflow(monkeypatch)
    app = open_page(PAGE)
    assert_clean(app)
    assert "No pass yet" in texts(app.info)
    assert f"Airflow does not answer at {url}" in texts(app.caption)


def test_a_pass_run_from_the_page_shows_its_decision_and_history(empty_env, monkeypatch):
    dead_airflow(monkeypatch)
    source = write_csv(empty_env.home.parent / "records.csv", 1200, seed=5)
    monkeypatch.setenv("DPE_PIPELINE_SOURCE", str(source))
    get_settings.cache_clear()
    app = open_page(PAGE)
    assert app.text_input(key="pipeline_source").value == str(source)
    app.button(key="pipeline_run").click().run()
    assert_clean(app)
    assert "Decision: **first_champion**" in texts(app.success)
    [table] = app.dataframe
    assert list(table.value["decision"]) == ["first_champion"]
    assert table.value["challenger"][0] > table.value["rules"][0]

    app.button(key="pipeline_run").click().run()  # the same file again: nothing new
    assert "Decision: **no_new_data**" in texts(app.success)
    assert list(app.dataframe[0].value["decision"]) == ["no_new_data", "first_champion"]

    home = open_page()
    assert "Last lifecycle pass" in texts(home.caption)
    assert "**no_new_data**" in texts(home.caption)
