"""The Monitor page (AppTest): empty states without an error box, verdicts and charts with data."""

import json

import pandas as pd

from core.data import warehouse
from core.data.schema import RECORD_FIELDS
from core.data.validation import clean
from core.monitoring import drift, prediction_log
from core.serving.champion import load_champion
from tests.support.pages import assert_clean, open_page, texts
from tooling import synth
from tooling.synth_tables import SECTORS

PAGE = "views/monitor.py"
SHOP = "M : Magasins de vente, centres commerciaux"


def log_predictions(settings, frame, source: str = "app") -> None:
    """Predict the frame's records with the champion and log them, as the pages do."""
    records = frame[list(RECORD_FIELDS)].astype(object).to_dict("records")
    champion = load_champion(settings)
    logger = prediction_log.PredictionLogger(settings)
    logger.log(records, champion.predict(records), champion.model_version, source)
    logger.close()


def training_rows(settings):
    return drift.labelled_rows(warehouse.load_dataset(settings)[1])


def drift_alarms(app) -> list[str]:
    """The page's drift verdict when it alarms (other warnings are not alarms)."""
    return [w.value for w in app.warning if w.value.startswith("Drift on")]


def test_empty_install_says_there_is_no_champion(empty_env):
    app = open_page(PAGE)
    assert_clean(app)
    assert "No model has been promoted to champion yet" in texts(app.info)


def test_champion_without_predictions_says_none_were_logged(data_env):
    app = open_page(PAGE)
    assert_clean(app)
    assert "No prediction logged in this window yet" in texts(app.info)


def test_a_handful_of_predictions_is_too_little_to_judge(own_data_env):
    log_predictions(own_data_env, training_rows(own_data_env).head(5))
    app = open_page(PAGE)
    assert_clean(app)
    assert "Too little data to judge" in texts(app.info)
    assert "5 records, at least 50 needed" in texts(app.info)


def test_an_api_that_does_not_answer_is_a_warning_saying_how_to_start_it(own_data_env):
    log_predictions(own_data_env, training_rows(own_data_env).head(5))
    app = open_page(PAGE)
    assert_clean(app)  # no error box: the API is a service to start, not a failure
    [warning] = [w.value for w in app.warning if "No API counters" in w.value]
    assert "does not answer" in warning and "`make run`" in warning
    assert "`uvicorn api.main:app --host 127.0.0.1 --port " in warning
    assert not drift_alarms(app)


def figure(chart) -> dict:
    return json.loads(chart.proto.spec)


def test_a_resample_shows_no_drift_with_its_charts(own_data_env):
    log_predictions(own_data_env, training_rows(own_data_env).sample(400, random_state=1))
    app = open_page(PAGE)
    assert_clean(app)
    assert "No drift" in texts(app.success)
    charts = app.get("plotly_chart")
    assert len(charts) == 4  # PSI bars, one feature's distributions, labels, volume
    assert app.metric[0].value == "400"
    # The PSI threshold is a legend entry, not a label drawn over the bars.
    psi = figure(charts[0])
    assert not psi["layout"].get("annotations")
    assert "PSI threshold 0.2" in {trace.get("name") for trace in psi["data"]}
    # Field names are readable, in the chart and the table.
    assert "Usable floor area (m²)" in str(psi["data"])
    assert "surface_utile" not in str(psi["data"])
    assert "Usable floor area (m²)" in set(app.dataframe[0].value["feature"])
    # Counts of predictions are whole numbers.
    assert figure(charts[3])["layout"]["yaxis"]["tickformat"] == ",d"

    app.selectbox(key="monitor_feature").set_value("surface_utile").run()
    assert_clean(app)
    bins = figure(app.get("plotly_chart")[1])
    assert bins["layout"]["title"]["text"] == "Usable floor area (m²): training data vs current"


def test_shifted_predictions_show_drift_and_a_dataset_version_can_be_judged(own_data_env):
    weights = {name: 1.0 for name in SECTORS} | {SHOP: 60.0}
    shifted = clean(synth.generate_records(600, seed=4, sector_weights=weights, surface_scale=3))
    log_predictions(own_data_env, shifted, source="batch")
    app = open_page(PAGE)
    assert_clean(app)
    [alarm] = drift_alarms(app)
    assert "Activity sector" in alarm and "Usable floor area (m²)" in alarm

    app.radio(key="monitor_mode").set_value("Records a dataset version added").run()
    assert_clean(app)
    # The only version is the training one: its records are the reference itself.
    assert "No drift" in texts(app.success)


def test_repeated_records_are_not_a_random_sample_and_raise_no_alarm(own_data_env):
    """Issue 15.7: the first rows of the sample sent over and over (59 requests of a few
    buildings) are not a random sample of buildings: the page says so, it does not alarm."""
    few = training_rows(own_data_env).head(3)
    log_predictions(own_data_env, pd.concat([few] * 20, ignore_index=True))
    app = open_page(PAGE)
    assert_clean(app)
    assert not drift_alarms(app), texts(app.warning)
    assert "Not a random sample of buildings" in texts(app.info)
    assert app.metric[2].value == "—"
    # Issue 23.4: one verdict on the page. The labels of such traffic are not judged either
    # (the KPI said "Predicted labels: drift"), and a PSI above the threshold is "not judged",
    # not "not significant" beside a p-value of 1e-80.
    assert app.metric[3].label == "Predicted labels" and app.metric[3].value == "—"
    report = drift.drift_report(own_data_env)
    assert report["label_shift"]["verdict"] == "not a random sample"
    assert not report["label_shift"]["drift"]
    psi = figure(app.get("plotly_chart")[0])
    names = [trace.get("name", "") for trace in psi["data"]]
    assert not [name for name in names if "not significant" in name], names
