"""The Pipeline page (AppTest): empty state, a pass run from the button with its decision and
history, the last decision on Home; a refused pass's quarantine accepted from the page; a
failed pass shown with why (and no "None" in the history)."""

import pandas as pd

from core.config import get_settings
from tests.support.pages import assert_clean, open_page, texts
from tests.support.servers import free_port
from tooling.synth import generate_records, write_csv

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
    assert "Pass 1 · decision: **first_champion**" in texts(app.success)
    [table] = app.dataframe
    assert list(table.value["decision"]) == ["first_champion"]
    assert table.value["challenger"][0] > table.value["rules"][0]

    app.button(key="pipeline_run").click().run()  # the same file again: nothing new
    assert "Pass 2 · decision: **no_new_data**" in texts(app.success)
    assert list(app.dataframe[0].value["decision"]) == ["no_new_data", "first_champion"]

    home = open_page()
    assert "Last lifecycle pass" in texts(home.caption)
    assert "**no_new_data**" in texts(home.caption)


def use_source(monkeypatch, path) -> None:
    monkeypatch.setenv("DPE_PIPELINE_SOURCE", str(path))
    get_settings.cache_clear()


def test_a_refused_pass_shows_its_quarantine_and_a_person_accepts_it(empty_env, monkeypatch):
    dead_airflow(monkeypatch)
    frame = generate_records(300, seed=8)
    frame["Surface_utile"] = -5.0  # every record fails validation
    source = empty_env.home.parent / "broken.csv"
    frame.to_csv(source, index=False)
    use_source(monkeypatch, source)
    app = open_page(PAGE)
    app.button(key="pipeline_run").click().run()
    assert_clean(app)
    assert "Pass 1 · decision: **refused_data**" in texts(app.success)
    assert "300 of its records are quarantined" in texts(app.markdown)
    app.button(key="pipeline_accept_1").click().run()
    assert_clean(app)
    assert "Pass 1: 300 records accepted" in texts(app.success)
    assert "Its 300 quarantined records were accepted by" in texts(app.markdown)
    assert "(workbench)" in texts(app.markdown) or "by workbench" in texts(app.markdown)
    assert not [b for b in app.button if b.key == "pipeline_accept_1"]


def test_a_failed_pass_says_why_and_the_history_shows_no_none(empty_env, monkeypatch):
    dead_airflow(monkeypatch)
    use_source(monkeypatch, write_csv(empty_env.home.parent / "records.csv", 300, seed=9))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{free_port()}")  # down
    get_settings.cache_clear()
    app = open_page(PAGE)
    app.button(key="pipeline_run").click().run()
    assert not app.exception
    assert "The pass stopped: MLflow server" in texts(app.error)
    assert "Pass 1 stopped at step train" in texts(app.warning)
    [table] = app.dataframe
    row = table.value.iloc[0]
    assert (row["status"], row["decision"], row["window"]) == ("failed at train", "—", "—")
    cells = table.value.astype(str).to_numpy().ravel().tolist()
    assert not {"None", "nan", "NaN", "<NA>"} & set(cells), cells
    assert not pd.isna(table.value).to_numpy().any()
