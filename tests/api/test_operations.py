"""Operating the API, over a real socket (uvicorn on 127.0.0.1, the store on S3 over HTTP):
probes before and after a champion, /metrics counters moving with traffic, the request id
from the header to the JSON log line and the prediction log, a 500 that shows nothing."""

import json
import sys

import httpx
import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families

from api.main import create_app
from core.errors import DpeError
from core.monitoring.prediction_store import read_predictions
from tests.support.api import (
    api_process,
    api_server,
    app_in_thread,
    store_settings,
    wait_until,
)
from tests.support.champion import publish_champion
from tests.support.cli import ROOT, cli_env
from tests.support.servers import free_port, running
from ui.api_metrics import read_api_counters


def metric_values(url: str) -> dict[tuple, float]:
    """Every sample of /metrics: {(name, sorted label pairs): value}."""
    response = httpx.get(f"{url}/metrics", timeout=10)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def total(values: dict, name: str, **labels: str) -> float:
    """The sum of the samples of `name` whose labels include `labels`."""
    return sum(
        value
        for (sample, pairs), value in values.items()
        if sample == name and set(labels.items()) <= set(pairs)
    )


def ready(url: str) -> bool:
    return httpx.get(f"{url}/readyz", timeout=5).status_code == 200


def test_livez_and_readyz_before_and_after_a_champion(
    settings, s3_endpoint, s3_bucket, pipelines, tmp_path
):
    settings = store_settings(settings, s3_endpoint, s3_bucket)
    with api_server(settings, tmp_path) as url:
        assert httpx.get(f"{url}/livez").status_code == 200

        def reason() -> str:
            not_ready = httpx.get(f"{url}/readyz")
            assert not_ready.status_code == 503
            return not_ready.json()["detail"]

        # First "loading the champion model", then why none loads.
        wait_until(lambda: "no champion model" in reason(), what="the reason in /readyz")
        assert httpx.get(f"{url}/health").status_code == 503  # its meaning is unchanged
        publish_champion(settings, pipelines["1"], 1)
        wait_until(lambda: ready(url), what="ready once a champion is published")
        assert httpx.get(f"{url}/readyz").json() == {"status": "ready", "model_version": "1"}
        assert httpx.get(f"{url}/livez").status_code == 200
        assert httpx.get(f"{url}/health").json()["status"] == "ok"


def test_metrics_move_with_traffic(settings, s3_endpoint, s3_bucket, pipelines, records, tmp_path):
    settings = store_settings(settings, s3_endpoint, s3_bucket)
    publish_champion(settings, pipelines["1"], 1, run_id="run-one")
    with api_process(settings, tmp_path, DPE_MAX_BATCH_ROWS="20") as (url, _):
        wait_until(lambda: ready(url), what="champion 1 ready")
        before = metric_values(url)
        sent = [*records[:7], {**records[0], "surface_utile": -5.0}]  # the last is refused
        assert httpx.post(f"{url}/predict", json={"records": sent}).status_code == 200
        assert httpx.post(f"{url}/predict", json={"records": records[:21]}).status_code == 413
        assert httpx.post(f"{url}/predict", content=b"not json").status_code == 422

        # Predictions are counted on the sink thread, just after the answer.
        def counted() -> bool:
            now = metric_values(url)
            return total(now, "dpe_predictions_total") - total(before, "dpe_predictions_total") == 7

        wait_until(counted, what="7 predictions counted")
        after = metric_values(url)
        shown = read_api_counters(url)  # what the Monitor page shows

    def moved(name: str, **labels: str) -> float:
        return total(after, name, **labels) - total(before, name, **labels)

    assert moved("dpe_predictions_total", model_version="1", source="api") == 7
    for reason in ("invalid_record", "too_many_records", "invalid_request"):
        assert moved("dpe_prediction_errors_total", reason=reason) == 1, reason
    latency = "dpe_http_request_duration_seconds_count"
    assert moved(latency, method="POST", route="/predict", status="200") == 1
    assert moved(latency, method="POST", route="/predict", status="413") == 1
    assert moved(latency, route="/metrics", status="200") >= 1
    champion = total(after, "dpe_champion_info", model_version="1", run_id="run-one")
    assert champion == 1 and 0 < total(after, "dpe_champion_load_seconds") < 60
    assert ("dpe_http_requests_in_flight", ()) in after
    assert sum(row["count"] for row in shown["predictions"]) == 7
    assert shown["errors"]["too_many_records"] == 1 and shown["champion"]["run_id"] == "run-one"


def test_metrics_can_be_switched_off(settings, tmp_path):
    with api_process(settings, tmp_path, DPE_METRICS="false") as (url, _):
        assert httpx.get(f"{url}/metrics").status_code == 404
        with pytest.raises(DpeError, match="serves no metrics"):
            read_api_counters(url)
    with pytest.raises(DpeError, match="does not answer"):
        read_api_counters(url)


def log_lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


def test_a_request_id_flows_from_header_to_log_line_and_prediction_log(
    settings, s3_endpoint, s3_bucket, pipelines, records, tmp_path
):
    settings = store_settings(settings, s3_endpoint, s3_bucket)
    publish_champion(settings, pipelines["1"], 1)
    with api_server(settings, tmp_path) as url:
        wait_until(lambda: ready(url), what="champion 1 ready")
        given = httpx.post(
            f"{url}/predict", json={"records": records[:3]}, headers={"X-Request-ID": "trace-42"}
        )
        assert given.headers["x-request-id"] == "trace-42"
        generated = httpx.post(f"{url}/predict", json={"records": records[:2]})
        new_id = generated.headers["x-request-id"]
        assert len(new_id) == 32 and new_id != "trace-42"
        csv = pd.DataFrame(records[:4]).to_csv(index=False).encode()
        uploaded = httpx.post(
            f"{url}/predict/csv",
            files={"file": ("four.csv", csv, "text/csv")},
            headers={"X-Request-ID": "csv-1"},
        )
        assert uploaded.status_code == 200 and uploaded.headers["x-request-id"] == "csv-1"
    # The server stopped: its log is complete and its prediction log written to the store.
    lines = log_lines(tmp_path / "api.log")
    assert all({"event", "level", "timestamp", "logger"} <= set(line) for line in lines)
    access = [line for line in lines if line.get("path") == "/predict"]
    assert [(line["request_id"], line["status"]) for line in access] == [
        ("trace-42", 200),
        (new_id, 200),
    ]
    logged = read_predictions(settings)
    counts = logged["request_id"].value_counts().to_dict()
    assert counts == {"trace-42": 3, new_id: 2, "csv-1": 4}
    assert set(logged["client"]) == {"host:127.0.0.1"}


@pytest.fixture
def served_in_thread(settings):
    """An app with a failing route, served by uvicorn in a thread (its logs on our stdout)."""
    app = create_app(settings, prediction_sink=lambda *args, **who: None)

    @app.get("/boom")
    async def boom():
        raise RuntimeError("secret at /tmp/dpe-internal-path, pid 4242")

    with app_in_thread(app, log_config=None) as url:
        yield url


def test_a_500_shows_no_exception_text_and_logs_the_traceback_with_its_id(served_in_thread, capsys):
    response = httpx.get(f"{served_in_thread}/boom", headers={"X-Request-ID": "boom-7"})
    assert response.status_code == 500 and response.headers["x-request-id"] == "boom-7"
    assert "secret" not in response.text and "RuntimeError" not in response.text
    assert "boom-7" in response.json()["detail"]
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line[:1] == "{"]
    [error] = [line for line in lines if line["level"] == "error"]
    assert error["request_id"] == "boom-7" and "RuntimeError: secret" in error["exception"]


def test_metrics_add_up_over_uvicorn_workers(settings, pipelines, records, tmp_path):
    """Two workers behind one port: /metrics counts every request, whichever worker answers
    it and whichever answers the scrape (PROMETHEUS_MULTIPROC_DIR)."""
    publish_champion(settings, pipelines["1"], 1)
    (tmp_path / "prometheus").mkdir()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "uvicorn", "api.main:app", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--workers", "2"]
    env = {
        **cli_env(settings),
        "DPE_LOG_PREDICTIONS": "false",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prometheus"),
    }
    counter_files = tmp_path / "prometheus"
    answers: list[httpx.Response] = []

    def each_worker_counted() -> bool:
        with httpx.Client() as client:  # a new connection: the kernel picks a worker
            answers.append(client.post(f"{url}/predict", json={"records": records[:2]}))
        # A worker writes its own counter file once it counts: both did, and at least 30 asked.
        return len(answers) >= 30 and len(list(counter_files.glob("counter_*.db"))) == 2

    with running(command, f"{url}/openapi.json", tmp_path / "api.log", env=env, cwd=ROOT):
        wait_until(lambda: ready(url), timeout_s=60, what="champion ready")
        # The second worker may still be starting (a 503 until its champion is served).
        wait_until(each_worker_counted, what="requests answered by both workers")
        predicted = 2 * sum(answer.is_success for answer in answers)
        assert predicted and all(answer.status_code in (200, 503) for answer in answers)

        def all_counted() -> bool:
            return total(metric_values(url), "dpe_predictions_total") == predicted

        wait_until(all_counted, what=f"{predicted} predictions counted over both workers")
        for _ in range(6):  # whichever worker answers the scrape
            values = metric_values(url)
            assert total(values, "dpe_predictions_total") == predicted
            requests = total(values, "dpe_http_request_duration_seconds_count", route="/predict")
            assert requests == len(answers)
