"""Home: purpose, status of data, champion and services; getting data (API, CSV upload
with what it adds / updates, a confirmation before updating records, an offline path)."""

import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from core.config import get_settings
from core.data.ingest import ingest
from tests.support.pages import assert_clean, open_page, texts
from tests.support.sources import records
from tooling.synth import write_csv

ADEME_PAGE = "https://data.ademe.fr/datasets/dpe-v2-tertiaire-2"


def csv_bytes(rows: list[dict]) -> bytes:
    return records(rows).to_csv(index=False).encode()


def building(n: str, surface: str) -> dict:
    return {"N°DPE": n, "Etiquette_DPE": "C", "Conso_kWhep/m²/an": "180", "Surface_utile": surface}


def saved_csv(settings, rows: list[dict]):
    path = settings.home / "first.csv"
    path.write_bytes(csv_bytes(rows))
    return path


@contextmanager
def health_server(code: int):
    """An HTTP server on loopback whose every GET answers `code` (an API without champion)."""

    class Answer(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


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
    assert "would add **1,000** new records" in texts(app.markdown)
    app.button(key="home_csv_ingest").click()
    app.run()
    assert_clean(app)
    assert "**1,000 added, 0 updated, 0 unchanged**" in texts(app.success)
    records_shown = {m.label: m.value for m in app.metric}["Records"]
    assert records_shown == "1,000"
    assert "version `" in texts(app.sidebar.markdown)


def test_an_upload_that_updates_records_says_how_many_and_asks(empty_env):
    ingest(empty_env, source=saved_csv(empty_env, [building(f"T{i}", "100") for i in (1, 2, 3)]))
    changed = [building("T1", "150"), building("T2", "250"), building("T3", "100")]
    upload = csv_bytes([*changed, building("T4", "90")])
    app = open_page()
    app.file_uploader(key="home_csv").set_value(("changes.csv", upload, "text/csv"))
    app.run()
    assert_clean(app)
    assert "add **1** new records, update **2** and leave **1** unchanged" in texts(app.markdown)
    assert "2 records of this file are already stored" in texts(app.warning)
    assert app.button(key="home_csv_ingest").disabled
    app.checkbox(key="home_csv_confirm").check().run()
    app.button(key="home_csv_ingest").click().run()
    assert_clean(app)
    assert "**1 added, 2 updated, 1 unchanged**" in texts(app.success)


def test_upload_above_the_limit_is_refused_with_a_clear_message(empty_env, monkeypatch):
    monkeypatch.setenv("DPE_MAX_UPLOAD_MB", "1")
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
    from tests.support.sources import page_server
    from tooling.synth import generate_records, to_api_pages

    pages = to_api_pages(generate_records(1000, seed=8).head(250), page_size=100)
    with page_server(pages) as server:
        monkeypatch.setenv("DPE_SOURCE", server.url)
        get_settings.cache_clear()
        app = open_page()
        app.number_input(key="home_api_limit").set_value(200)
        app.button(key="home_api_ingest").click()
        app.run()
    assert_clean(app)
    assert "Ingested from the ADEME API: 200 records read — **200 added" in texts(app.success)
    assert len(server.requests) == 2  # two pages of 100 records


def test_offline_fetch_says_what_happened_and_where_to_go(empty_env, monkeypatch):
    # .invalid never resolves (RFC 6761): the name lookup fails as it does offline.
    monkeypatch.setenv("DPE_SOURCE", "https://data.ademe.invalid/lines")
    monkeypatch.setenv("DPE_HTTP_RETRIES", "0")
    get_settings.cache_clear()
    app = open_page()
    app.button(key="home_api_ingest").click().run()
    assert_clean(app)
    warning = texts(app.warning)
    assert "data.ademe.invalid could not be reached" in warning
    assert "Upload an ADEME CSV" in warning and ADEME_PAGE in warning
    assert "Errno" not in warning and "attempt" not in warning
    # Issue 23.16: the message is above the Ingest records panel, whose tab it names.
    assert "tab of *Ingest records* below" in warning and "above" not in warning


def test_a_bad_csv_is_a_warning_naming_the_problem(empty_env):
    app = open_page()
    app.file_uploader(key="home_csv").set_value(("bad.csv", b"a,b\n1,2\n", "text/csv"))
    app.run()
    assert_clean(app)
    assert "N°DPE" in texts(app.warning)
    assert not [b for b in app.button if b.key == "home_csv_ingest"]
    assert "No data yet" in texts(app.info)


def test_an_api_without_champion_is_up_not_online(empty_env, monkeypatch):
    with health_server(503) as url:
        monkeypatch.setenv("DPE_API_URL", url)
        get_settings.cache_clear()
        app = open_page()
    assert_clean(app)
    statuses = [m.value for m in app.metric if m.label == "Status"]
    assert statuses == ["offline", "up, no champion"]  # MLflow, API
    assert "API docs]" in texts(app.sidebar.markdown)
    assert "up, no champion" in texts(app.sidebar.markdown)
    assert "no champion to serve yet" in texts(app.info)


def test_an_api_loading_the_promoted_champion_does_not_say_no_champion(data_env, monkeypatch):
    """Issue 23.8: right after a promotion the API (503 until it loads the new champion)
    read "up, no champion" in the sidebar, beside the champion it was loading."""
    with health_server(503) as url:
        monkeypatch.setenv("DPE_API_URL", url)
        get_settings.cache_clear()
        app = open_page()
    assert_clean(app)
    statuses = [m.value for m in app.metric if m.label == "Status"]
    assert statuses == ["offline", "up, loading champion v1"]  # MLflow, API
    assert "loading champion v1" in texts(app.sidebar.markdown)
    assert "no champion" not in texts(app.sidebar.markdown)


def test_the_mlflow_runs_link_follows_the_first_training(empty_env, mlflow_server, monkeypatch):
    """Issue 23.16: the sidebar's "MLflow runs" link kept landing on the experiment list
    after the first training created the experiment (its absence was cached for a minute)."""
    from core.tracking import registry

    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    monkeypatch.delenv("DPE_MLFLOW_UI_URL")
    get_settings.cache_clear()
    app = open_page()
    assert f"[MLflow runs]({mlflow_server}/#/experiments)" in texts(app.sidebar.markdown)
    settings = get_settings()
    created = registry.experiment_id(settings, registry.connect(settings))  # as train() does
    app.run()
    runs = f"[MLflow runs]({mlflow_server}/#/experiments/{created}/runs)"
    assert runs in texts(app.sidebar.markdown)


def test_a_running_mlflow_server_shows_online(empty_env, mlflow_server, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    monkeypatch.delenv("DPE_MLFLOW_UI_URL")  # the UI is the tracking server itself
    # An experiment no other test of the session created: the server is shared.
    monkeypatch.setenv("DPE_EXPERIMENT_NAME", "dpe-label-never-trained")
    get_settings.cache_clear()
    app = open_page()
    assert_clean(app)
    statuses = [m.value for m in app.metric if m.label == "Status"]
    assert statuses == ["online", "offline"]  # MLflow, API
    assert "MLflow" not in texts(app.warning) and "API" in texts(app.warning)
    # Not MLflow's GenAI home: the training runs (the experiment list on a fresh server).
    links = {b.proto.label: b.proto.url for b in app.get("link_button")}
    assert links["Training runs in MLflow"] == f"{mlflow_server}/#/experiments"
    assert f"[MLflow runs]({mlflow_server}/#/experiments)" in texts(app.sidebar.markdown)
