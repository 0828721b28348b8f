"""The Monitor page (AppTest): empty states without an error box, verdicts and charts with data."""

from core import monitoring, predict, synth, warehouse
from core.ingest import clean
from core.schema import RECORD_FIELDS
from tests.pages.conftest import assert_clean, open_page, texts

PAGE = "pages/6_Monitor.py"
SHOP = "M : Magasins de vente, centres commerciaux"


def log_predictions(settings, frame, source: str = "app") -> None:
    """Predict the frame's records with the champion and log them, as the pages do."""
    records = frame[list(RECORD_FIELDS)].astype(object).to_dict("records")
    champion = predict.load_champion(settings)
    logger = monitoring.PredictionLogger(settings)
    logger.log(records, champion.predict(records), champion.model_version, source)
    logger.close()


def training_rows(settings):
    return monitoring.labelled_rows(warehouse.load_dataset(settings)[1])


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


def test_a_resample_shows_no_drift_with_its_charts(own_data_env):
    log_predictions(own_data_env, training_rows(own_data_env).sample(400, random_state=1))
    app = open_page(PAGE)
    assert_clean(app)
    assert "No drift" in texts(app.success)
    charts = app.get("plotly_chart")
    assert len(charts) == 4  # PSI bars, one feature's distributions, labels, volume
    assert app.metric[0].value == "400"

    app.selectbox(key="monitor_feature").set_value("surface_utile").run()
    assert_clean(app)
    assert "surface_utile: training data vs current" in str(app.get("plotly_chart")[1].proto)


def test_shifted_predictions_show_drift_and_a_dataset_version_can_be_judged(own_data_env):
    weights = {name: 1.0 for name in synth.SECTORS} | {SHOP: 60.0}
    shifted = clean(synth.generate_records(600, seed=4, sector_weights=weights, surface_scale=3))
    log_predictions(own_data_env, shifted, source="batch")
    app = open_page(PAGE)
    assert_clean(app)
    warning = texts(app.warning)
    assert "Drift on" in warning and "secteur_activite" in warning and "surface_utile" in warning

    app.radio(key="monitor_mode").set_value("Records a dataset version added").run()
    assert_clean(app)
    # The only version is the training one: its records are the reference itself.
    assert "No drift" in texts(app.success)
