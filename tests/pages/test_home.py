"""Home: purpose, status of data, champion and services; getting data on an empty install."""

from core.synth import write_csv
from tests.pages.conftest import assert_clean, open_page, texts


def test_empty_install_shows_how_to_get_data(empty_env):
    app = open_page()
    assert_clean(app)
    assert "DPE workbench" in app.title[0].value
    assert "No data yet" in texts(app.info)
    assert ("Records", "none yet") in [(m.label, m.value) for m in app.metric]
    # MLflow and the API do not answer: warnings saying how to start them, no error box.
    warnings = texts(app.warning)
    assert "does not answer" in warnings and "make run" in warnings
    assert "uvicorn api.main:app" in warnings
    assert app.button(key="home_api_ingest").label == "Fetch and ingest"


def test_uploading_an_ademe_csv_ingests_it(empty_env, tmp_path):
    path = write_csv(tmp_path / "export.csv", 1000, seed=5)
    app = open_page()
    app.file_uploader(key="home_csv").set_value((path.name, path.read_bytes(), "text/csv"))
    app.run()
    app.button(key="home_csv_ingest").click()
    app.run()
    assert_clean(app)
    assert "Ingested: 1,000 records" in texts(app.success)
    records = {m.label: m.value for m in app.metric}["Records"]
    assert records == "1,000"
    assert "version `" in texts(app.sidebar.markdown)


def test_upload_above_the_limit_is_refused_with_a_clear_message(empty_env, monkeypatch):
    monkeypatch.setenv("DPE_MAX_UPLOAD_MB", "1")
    from core.config import get_settings

    get_settings.cache_clear()
    app = open_page()
    big = b"N\xc2\xb0DPE\n" + b"x" * (1024 * 1024 + 10)
    app.file_uploader(key="home_csv").set_value(("big.csv", big, "text/csv"))
    app.run()
    assert_clean(app)
    assert "above the 1 MB limit" in texts(app.warning)


def test_with_data_and_champion_shows_their_status(data_env, data_home):
    _, built = data_home
    app = open_page()
    assert_clean(app)
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Records"] == f"{built['ingest']['rows']:,}"
    version = built["promote"]["model_version"]
    assert any(label.endswith(f"v{version}") for label in metrics)
    assert "No data yet" not in texts(app.info)


def test_ingesting_from_the_ademe_api(empty_env, monkeypatch):
    """The API button against a local ADEME API serving generated pages as a `next` chain."""
    from core.config import get_settings
    from core.synth import generate_records, to_api_pages
    from tests.data.sources import page_server

    pages = to_api_pages(generate_records(1000, seed=8).head(250), page_size=100)
    with page_server(pages) as server:
        monkeypatch.setenv("DPE_SOURCE", server.url)
        get_settings.cache_clear()
        app = open_page()
        app.number_input(key="home_api_limit").set_value(200)
        app.button(key="home_api_ingest").click()
        app.run()
    assert_clean(app)
    assert "Ingested: 200 records" in texts(app.success)
    assert len(server.requests) == 2  # two pages of 100 records


def test_a_bad_csv_is_a_warning_naming_the_problem(empty_env):
    app = open_page()
    app.file_uploader(key="home_csv").set_value(("bad.csv", b"a,b\n1,2\n", "text/csv"))
    app.run()
    app.button(key="home_csv_ingest").click()
    app.run()
    assert_clean(app)
    assert "N°DPE" in texts(app.warning)
    assert "No data yet" in texts(app.info)


def test_a_running_mlflow_server_shows_online(empty_env, mlflow_server, monkeypatch):
    from core.config import get_settings

    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    monkeypatch.delenv("DPE_MLFLOW_UI_URL")  # the UI is the tracking server itself
    get_settings.cache_clear()
    app = open_page()
    assert_clean(app)
    statuses = [m.value for m in app.metric if m.label == "Status"]
    assert statuses == ["online", "offline"]  # MLflow, API
    assert "MLflow" not in texts(app.warning) and "API" in texts(app.warning)
    links = {b.proto.label: b.proto.url for b in app.get("link_button")}
    assert links["Open the MLflow UI"] == mlflow_server
