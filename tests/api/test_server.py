"""The API over a real socket, its store on S3 over HTTP (moto server): predicting, hot swap
after a second promotion, the store going down after load and being down at start, and
the same answer from every route and from the CLI."""

from contextlib import contextmanager

import boto3
import httpx
import numpy as np
import pandas as pd

from core.data.schema import LABELS, RECORD_FIELDS, to_snake_case
from tests.support.api import TOKEN, api_server, health, serving, store_settings, wait_until
from tests.support.champion import as_floats, probabilities, publish_champion
from tests.support.cli import cli_env, run_cli
from tests.support.servers import free_port

SECTOR = "W : Administrations, banques, bureaux"


@contextmanager
def moto_server(port: int = 0):
    """A moto S3 server of this test's own, to stop and start at will; yields its endpoint."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    host, bound = server.get_host_and_port()
    try:
        yield f"http://{host}:{bound}"
    finally:
        server.stop()


def create_bucket(endpoint: str, name: str) -> None:
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=name)


def post_records(url: str, records: list[dict]) -> httpx.Response:
    return httpx.post(f"{url}/predict", json={"records": records}, timeout=30)


def test_predict_over_s3(settings, s3_endpoint, s3_bucket, pipelines, records, tmp_path):
    settings = store_settings(settings, s3_endpoint, s3_bucket)
    manifest = publish_champion(settings, pipelines["1"], 1)
    with api_server(settings, tmp_path) as url:
        wait_until(lambda: serving(url, "1"), what="champion 1 served")
        code, body = health(url)
        assert body["status"] == "ok" and body["loaded_at"]
        response = post_records(url, records[:80])
        assert response.status_code == 200
        answer = response.json()
        assert answer["model_version"] == "1"
        expected = pipelines["1"].predict_proba(pd.DataFrame(records[:80]))
        assert np.array_equal(probabilities(answer["predictions"]), expected)
        assert httpx.get(f"{url}/model").json() == manifest.to_dict()


def test_hot_swap_after_a_second_promotion(
    settings, s3_endpoint, s3_bucket, pipelines, records, tmp_path
):
    settings = store_settings(settings, s3_endpoint, s3_bucket)
    publish_champion(settings, pipelines["1"], 1)
    with api_server(settings, tmp_path) as url:
        wait_until(lambda: serving(url, "1"), what="champion 1 served")
        publish_champion(settings, pipelines["2"], 2)
        # A few reload intervals (0.3 s) plus loading time.
        wait_until(lambda: serving(url, "2"), what="champion 2 swapped in")
        answer = post_records(url, records[:10]).json()
        assert answer["model_version"] == "2"
        expected = pipelines["2"].predict_proba(pd.DataFrame(records[:10]))
        assert np.array_equal(probabilities(answer["predictions"]), expected)


def test_store_down_after_load_keeps_serving(settings, pipelines, records, tmp_path):
    from moto.server import ThreadedMotoServer

    store = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    store.start()
    running_store = True
    try:
        host, port = store.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        create_bucket(endpoint, "down-after-load")
        settings = store_settings(settings, endpoint, "down-after-load")
        publish_champion(settings, pipelines["1"], 1)
        with api_server(settings, tmp_path) as url:
            wait_until(lambda: serving(url, "1"), what="champion served")
            store.stop()
            running_store = False
            wait_until(lambda: health(url)[1]["status"] == "degraded", what="degraded")
            code, body = health(url)
            assert code == 200 and body["model_version"] == "1"
            assert "unreachable" in body["detail"]
            response = post_records(url, records[:3])
            assert response.status_code == 200 and response.json()["model_version"] == "1"
            # Issue 24.12: this replica serves, so it stays ready (every replica sees the same
            # store: a 503 would take them all out of the Service at once); the metric says.
            ready = httpx.get(f"{url}/readyz", timeout=5)
            assert ready.status_code == 200 and ready.json()["model_version"] == "1"
            metrics = httpx.get(f"{url}/metrics", timeout=5).text
            assert "dpe_champion_problem 1.0" in metrics.splitlines()
    finally:
        if running_store:
            store.stop()


def test_store_down_at_start_then_back(settings, pipelines, records, tmp_path):
    port = free_port()  # nothing listens there yet
    settings = store_settings(settings, f"http://127.0.0.1:{port}", "down-at-start")
    with api_server(settings, tmp_path) as url:
        wait_until(lambda: "unreachable" in (health(url)[1].get("detail") or ""), what="503")
        code, body = health(url)
        assert code == 503 and body["status"] == "unavailable"
        refused = post_records(url, records[:1])
        assert refused.status_code == 503 and "no model loaded" in refused.json()["detail"]
        assert refused.json()["code"] == "unavailable"  # a client may try again later
        with moto_server(port) as endpoint:
            create_bucket(endpoint, "down-at-start")
            publish_champion(settings, pipelines["1"], 1)
            wait_until(lambda: serving(url, "1"), what="served once the store is up")
            assert post_records(url, records[:1]).status_code == 200


def agreeing_cases(records: list[dict]) -> list[dict]:
    """Records with null, blank and missing categories, official names, and an empty one."""
    first, second = records[0], records[1]
    return [
        *records[:70],
        {**first, "secteur_activite": None, "periode_construction": None},
        {k: v for k, v in second.items() if k not in ("secteur_activite", "categorie_erp")},
        {**first, "type_energie_n_1": ""},
        {},
        {"Secteur_activité": SECTOR, "Conso_kWhep/m²/an": 120.0, "Surface_utile": 300.0},
        {"secteur_activite": "Z : Zoo"},  # never seen: predicted with a warning
        {"annee_construction": 1990.5},  # refused, in every route alike
        {"surface_utile": int("9" * 400)},  # beyond a float: refused alike, JSON included
        {"surface_utile": 0.0},
    ]


def as_csv(cases: list[dict]) -> bytes:
    rows = [dict(zip(to_snake_case(case), case.values(), strict=True)) for case in cases]
    return pd.DataFrame(rows, columns=list(RECORD_FIELDS)).to_csv(index=False).encode()


def csv_results(data: bytes) -> tuple[list, np.ndarray, list, list]:
    frame = pd.read_csv(pd.io.common.BytesIO(data), dtype=str, keep_default_na=False)
    proba = frame[[f"proba_{label}" for label in LABELS]].replace("", "nan").astype(float)
    labels = [label or None for label in frame["predicted_label"]]
    errors = [error or None for error in frame["error"]]
    return labels, proba.to_numpy(), errors, [code or None for code in frame["error_code"]]


def json_results(predictions: list[dict]) -> tuple[list, np.ndarray, list, list]:
    proba = [as_floats(p["probabilities"]) if p["label"] else [np.nan] * 7 for p in predictions]
    codes = ["|".join(problem["code"] for problem in p["errors"]) or None for p in predictions]
    labels, errors = [p["label"] for p in predictions], [p["error"] for p in predictions]
    return labels, np.array(proba), errors, codes


def test_single_batch_csv_and_cli_agree(
    settings, s3_endpoint, s3_bucket, pipelines, records, tmp_path
):
    settings = store_settings(settings, s3_endpoint, s3_bucket)
    publish_champion(settings, pipelines["1"], 1)
    cases = agreeing_cases(records)
    source = tmp_path / "cases.csv"
    source.write_bytes(as_csv(cases))
    with api_server(settings, tmp_path) as url:
        wait_until(lambda: serving(url, "1"), what="champion served")
        alone = [post_records(url, [case]).json()["predictions"][0] for case in cases]
        batch = post_records(url, cases).json()["predictions"]  # > 64: the forest engine
        upload = httpx.post(
            f"{url}/predict/csv", files={"file": ("cases.csv", source.read_bytes())}, timeout=30
        )
    assert upload.status_code == 200
    code, payload, stderr = run_cli(
        "predict", "--input", str(source), "--output", str(tmp_path / "out.csv"),
        env=cli_env(settings),
    )  # fmt: skip
    assert code == 0, stderr
    results = {
        "alone": json_results(alone),
        "batch": json_results(batch),
        "csv route": csv_results(upload.content),
        "cli": csv_results((tmp_path / "out.csv").read_bytes()),
    }
    labels, proba, errors, codes = results["alone"]
    assert labels[-3:] == [None, None, None] and all(labels[:-3])
    assert errors[-2] == "Surface_utile=inf must be <= 1000000"
    assert codes[-3:] == ["not_an_integer", "above_maximum", "below_minimum"]
    assert not any(codes[:-3])
    for name, (other_labels, other_proba, other_errors, other_codes) in results.items():
        assert other_labels == labels, name
        assert np.array_equal(other_proba, proba, equal_nan=True), name
        assert other_errors == errors, name
        assert other_codes == codes, name
    assert payload == {**payload, "rows": len(cases), "predicted": len(cases) - 3, "rejected": 3}


def test_admin_reload_needs_the_token(settings, s3_endpoint, s3_bucket, pipelines, tmp_path):
    settings = store_settings(settings, s3_endpoint, s3_bucket)
    publish_champion(settings, pipelines["1"], 1)
    with api_server(settings, tmp_path) as url:
        wait_until(lambda: serving(url, "1"), what="champion served")

        def reload(token: str | None) -> httpx.Response:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            return httpx.post(f"{url}/admin/reload", headers=headers, timeout=30)

        assert reload(None).status_code == 401
        assert reload("wrong").status_code == 401
        publish_champion(settings, pipelines["2"], 2)
        answer = reload(TOKEN)
    assert answer.status_code == 200
    assert answer.json()["model_version"] == "2"
