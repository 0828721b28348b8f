"""The API in-process (TestClient): request validation, limits, the admin token, the
production token rule, a missing champion, and the swap that spares requests in flight."""

import json
import os
import re
import subprocess
import sys

import pytest
from fastapi.testclient import TestClient

from api.auth import FAILURE_WINDOW_S, FailedAttempts
from api.main import create_app
from api.schemas import STRIPPED, validate_records
from api.state import ServingState
from core.config import DEFAULT_API_TOKEN
from core.errors import DpeError
from tests.support.api import TOKEN, wait_until
from tests.support.champion import publish_champion
from tests.support.cli import ROOT
from tests.support.servers import free_port
from tests.support.sources import utf8_export_with_a_bad_byte

STRONG_TOKEN = "9f2c7a1e5b3d8064cafe2b71d9e4"


@pytest.fixture
def limited(settings):
    return settings.model_copy(
        update={
            "max_batch_rows": 5,
            "max_upload_mb": 1,
            "api_token": TOKEN,
            "reload_interval_s": 0.2,
        }
    )


def serving(settings, pipeline):
    """A TestClient of the app on `settings`, once it serves `pipeline` as champion 1."""
    publish_champion(settings, pipeline, 1)
    client = TestClient(create_app(settings), raise_server_exceptions=False)
    with client:
        wait_until(lambda: client.get("/health").status_code == 200, what="champion loaded")
        yield client


@pytest.fixture
def client(limited, pipelines):
    yield from serving(limited, pipelines["1"])


@pytest.mark.parametrize("value", ["grand", "12", False, True])
def test_text_or_a_boolean_in_a_number_field_is_a_422_naming_it(client, value):
    response = client.post("/predict", json={"records": [{"surface_utile": value}]})
    assert response.status_code == 422
    body = response.json()
    assert body["errors"][0]["loc"] == ["body", "records", 0, "surface_utile"]
    assert body["detail"].startswith("records.0.surface_utile: Input should be a valid number")


@pytest.fixture
def roomy(settings, pipelines):
    """The API with its default limits (10,000 records a request)."""
    yield from serving(settings, pipelines["1"])


def test_a_wrong_type_deep_in_a_large_batch_is_a_422_naming_each(roomy, records):
    batch = [records[row % len(records)] for row in range(200)]
    batch[150] = {**batch[150], "surface_utile": "850"}
    batch[170] = {**batch[170], "secteur_activite": 3}
    response = roomy.post("/predict", json={"records": batch})
    assert response.status_code == 422
    assert [error["loc"] for error in response.json()["errors"]] == [
        ["body", "records", 150, "surface_utile"],
        ["body", "records", 170, "secteur_activite"],
    ]


def test_text_loses_the_white_space_the_schema_strips(roomy):
    sector = "W : Administrations, banques, bureaux"
    padded = [f"\u00a0{sector}\u3000", sector, f"\x1c{sector}"]  # \x1c: not Unicode White_Space
    records = [{"secteur_activite": text, "surface_utile": 850} for text in padded * 40]
    predictions = roomy.post("/predict", json={"records": records}).json()["predictions"]
    assert predictions[0] == predictions[1] and predictions[1]["warnings"] == []
    assert "never saw" in predictions[2]["warnings"][0]
    assert predictions[:3] * 40 == predictions


def test_stripped_is_what_the_record_schema_strips():
    # Every white space code point is below U+3001.
    stripped = {
        char
        for char in map(chr, range(0x3001))
        if validate_records([{"secteur_activite": f"{char}x"}])[0]["secteur_activite"] == "x"
    }
    assert stripped == set(STRIPPED)


def test_a_lone_surrogate_is_a_422_not_a_500(client):
    for body in (b'{"records": [{"secteur_activite": "\\ud800"}]}', b'{"records": "\\udfff"}'):
        response = client.post(
            "/predict", content=body, headers={"content-type": "application/json"}
        )
        assert response.status_code == 422, response.text
        assert "unpaired surrogate" in response.json()["detail"]
    not_utf8 = client.post(
        "/predict",
        content=b'{"records": [{"x": "\xff"}]}',
        headers={"content-type": "application/json"},
    )
    assert not_utf8.status_code == 422 and "not UTF-8" in not_utf8.json()["detail"]


def test_a_surrogate_pair_is_text_like_any_other(client):
    body = b'{"records": [{"secteur_activite": "\\ud83d\\ude00"}]}'
    response = client.post("/predict", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 200 and len(response.json()["predictions"]) == 1


def test_every_error_has_a_text_detail(client):
    missing_file = client.post("/predict/csv")
    assert missing_file.status_code == 422
    assert isinstance(missing_file.json()["detail"], str) and missing_file.json()["errors"]
    broken_multipart = client.post(
        "/predict/csv",
        content=b"--x\r\nnope",
        headers={"content-type": "multipart/form-data"},  # no boundary
    )
    assert broken_multipart.status_code == 400
    assert isinstance(broken_multipart.json()["detail"], str)


def test_unknown_keys_reach_the_answer(client):
    cases = [{"surface_utile": 850, "conso_kwhep_m2an": 900}, {"surface": 850}]
    first, second = client.post("/predict", json={"records": cases}).json()["predictions"]
    assert first["label"] is not None
    assert any("conso_kwhep_m2an" in w and "conso_kwhep_m2_an" in w for w in first["warnings"])
    assert second["label"] is None and "surface" in second["error"]  # no known field at all


def test_predictions_carry_warnings(client, records):
    predictions = client.post("/predict", json={"records": records[:2]}).json()["predictions"]
    assert all(isinstance(p["warnings"], list) for p in predictions)


@pytest.mark.parametrize(
    "body",
    [{"records": []}, {"rows": [{}]}, {"records": {"surface_utile": 1}}, {"records": [[1, 2]]}],
)
def test_malformed_bodies_are_422(client, body):
    assert client.post("/predict", json=body).status_code == 422


def test_not_json_is_422(client):
    response = client.post(
        "/predict", content=b"{oops", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422


def test_official_names_in_json(client, records):
    by_official = {
        "Secteur_activité": "W : Administrations, banques, bureaux",
        "Surface_utile": 300,
    }
    by_snake = {"secteur_activite": "W : Administrations, banques, bureaux", "surface_utile": 300}
    answer = client.post("/predict", json={"records": [by_official, by_snake]}).json()
    first, second = answer["predictions"]
    assert first == second and first["label"] is not None


def test_unacceptable_record_is_200_with_its_error(client, records):
    cases = [records[0], {"annee_construction": 1990.5}, {"secteur_activite": "Z : Zoo"}]
    response = client.post("/predict", json={"records": cases})
    assert response.status_code == 200
    ok, refused, unseen = response.json()["predictions"]
    assert ok["label"] is not None and ok["error"] is None
    assert refused["label"] is None and refused["probabilities"] is None
    assert "Année_construction=1990.5 is not an integer" in refused["error"]
    # A category the model never saw is predicted, with a warning (DESIGN).
    assert unseen["label"] is not None and unseen["error"] is None
    assert any("Z : Zoo" in warning for warning in unseen["warnings"])


def test_more_records_than_the_limit_is_413(client, records):
    response = client.post("/predict", json={"records": records[:6]})
    assert response.status_code == 413 and "DPE_MAX_BATCH_ROWS" in response.json()["detail"]
    assert client.post("/predict", json={"records": records[:5]}).status_code == 200


def test_an_upload_above_the_limit_is_413(client):
    big = b"surface_utile\n" + b"100\n" * 300_000  # 1.2 MB > 1 MB
    response = client.post("/predict/csv", files={"file": ("big.csv", big)})
    assert response.status_code == 413 and "DPE_MAX_UPLOAD_MB" in response.json()["detail"]


@pytest.mark.parametrize("content", [b"", b"\n\n"])
def test_an_unreadable_csv_is_422(client, content):
    response = client.post("/predict/csv", files={"file": ("bad.csv", content)})
    assert response.status_code == 422 and response.json()["detail"]


def test_a_csv_with_none_of_the_fields_is_refused_naming_them(client):
    data = b"name,price,colour\nhall,12,red\n"
    response = client.post("/predict/csv", files={"file": ("other.csv", data)})
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert "Surface_utile" in detail or "surface_utile" in detail, detail
    assert "/tmp" not in detail and "dpe-api-" not in detail


def test_a_csv_with_a_bad_byte_late_is_refused_naming_its_line(client, tmp_path):
    data = utf8_export_with_a_bad_byte(tmp_path / "export.csv").read_bytes()
    response = client.post("/predict/csv", files={"file": ("export.csv", data)})
    assert response.status_code == 422
    assert "export.csv is UTF-8 text but line 2151 holds a byte" in response.json()["detail"]


def test_a_header_a_spreadsheet_would_run_comes_back_neutralised(client):
    data = b'surface_utile,=HYPERLINK("http://evil/x")\n250,a\n'
    response = client.post("/predict/csv", files={"file": ("in.csv", data)})
    assert response.status_code == 200
    assert response.text.startswith('surface_utile,"\'=HYPERLINK(""http://evil/x"")",')


def test_csv_route_answers_csv_with_counts(client):
    data = "Surface_utile;Conso_kWhep/m²/an\n250,5;120\n0;80\n".encode("cp1252")
    response = client.post("/predict/csv", files={"file": ("in.csv", data)})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert (response.headers["x-rows"], response.headers["x-rejected"]) == ("2", "1")
    lines = response.content.decode("utf-8").splitlines()
    assert lines[0].startswith("Surface_utile,Conso_kWhep/m²/an,predicted_label,proba_A")
    # The last three columns: error, error_code, then warning (empty).
    assert lines[1].startswith('"250,5",120,') and lines[1].endswith(",,,")
    assert lines[2].endswith("Surface_utile=0 must be > 0,below_minimum,")


def test_admin_reload_token(client):
    assert client.post("/admin/reload").status_code == 401
    wrong = client.post("/admin/reload", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
    right = client.post("/admin/reload", headers={"Authorization": f"Bearer {TOKEN}"})
    assert right.status_code == 200 and right.json()["model_version"] == "1"


def test_no_champion_is_503_with_the_reason(limited):
    with TestClient(create_app(limited), raise_server_exceptions=False) as client:
        wait_until(lambda: "promote" in (client.get("/health").json()["detail"] or ""))
        response = client.get("/health")
        assert response.status_code == 503 and response.json()["status"] == "unavailable"
        assert "no champion model in" in response.json()["detail"]
        assert client.post("/predict", json={"records": [{}]}).status_code == 503
        assert client.get("/model").status_code == 503


def test_openapi_says_an_uploaded_file_may_not_be_empty(client):
    """Schemathesis ST202: an empty file, refused with a 422, was schema-valid."""
    schema = client.get("/openapi.json").json()
    body = schema["paths"]["/predict/csv"]["post"]["requestBody"]["content"]
    reference = body["multipart/form-data"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert schema["components"]["schemas"][reference]["properties"]["file"]["minLength"] == 1
    assert client.post("/predict/csv", files={"file": ("a.csv", b"")}).status_code == 422


def test_openapi_documents_the_routes_with_examples(client):
    schema = client.get("/openapi.json").json()
    assert {"/health", "/model", "/predict", "/predict/csv", "/admin/reload"} <= set(
        schema["paths"]
    )
    assert schema["components"]["schemas"]["PredictRequest"]["examples"]


def test_a_swap_spares_the_requests_in_flight(limited, pipelines, records):
    publish_champion(limited, pipelines["1"], 1)
    state = ServingState(limited)
    assert state.refresh() and state.champion.model_version == "1"
    assert not state.champion.light  # the quick champion was replaced by the checked one
    in_flight = state.champion  # what a request took when it started
    publish_champion(limited, pipelines["2"], 2)
    assert state.refresh() and state.champion.model_version == "2"
    assert not state.refresh()  # same manifest: nothing to do
    assert in_flight.model_version == "1"
    assert in_flight.predict(records[:2])[0]["label"] is not None


@pytest.mark.parametrize(
    ("token", "why"),
    [
        ("", "is empty"),
        (DEFAULT_API_TOKEN, "is the default one"),
        ("Change-Me", "is the default one"),
        (" " * 30, "is empty|contains whitespace"),
        ("x", "has 1 characters, fewer than 24"),
        ("a" * 40, "has fewer than 10 distinct characters"),
        ("abc" * 10, "has fewer than 10 distinct characters"),
        ("9f2c7a1e5b3d 8064cafe2b71d9e4", "contains whitespace"),
        ("abcdefghijklmnopqrstuvwx", "is predictable"),  # issue 24: it passed the rules above
        ("qwertyuiopasdfghjklzxcvbnm", "is predictable"),
    ],
)
def test_production_refuses_a_weak_token(settings, token, why):
    prod = settings.model_copy(update={"env": "production", "api_token": token})
    with (
        pytest.raises(DpeError, match=f"strong DPE_API_TOKEN: it ({why})"),
        TestClient(create_app(prod)),
    ):
        pass


def test_production_refuses_the_admin_token_as_predict_token(settings):
    prod = settings.model_copy(
        update={"env": "production", "api_token": STRONG_TOKEN, "predict_token": STRONG_TOKEN}
    )
    with (
        pytest.raises(DpeError, match="DPE_PREDICT_TOKEN other than DPE_API_TOKEN"),
        TestClient(create_app(prod)),
    ):
        pass


def test_production_refuses_a_weak_predict_token(settings):
    prod = settings.model_copy(
        update={"env": "production", "api_token": STRONG_TOKEN, "predict_token": "short"}
    )
    with pytest.raises(DpeError, match="strong DPE_PREDICT_TOKEN"), TestClient(create_app(prod)):
        pass


def test_failed_admin_attempts_slide_out_of_the_window():
    now = [0.0]
    attempts = FailedAttempts(5, clock=lambda: now[0])
    for _ in range(4):
        attempts.add("10.0.0.1")
    assert attempts.retry_after("10.0.0.1") == 0
    attempts.add("10.0.0.1")
    assert attempts.retry_after("10.0.0.1") == FAILURE_WINDOW_S + 1
    assert attempts.retry_after("10.0.0.2") == 0  # per client
    now[0] = FAILURE_WINDOW_S / 2
    assert 0 < attempts.retry_after("10.0.0.1") <= FAILURE_WINDOW_S / 2 + 1
    now[0] = FAILURE_WINDOW_S + 0.1
    assert attempts.retry_after("10.0.0.1") == 0


def test_predict_token_when_set(limited, pipelines, records):
    guarded = limited.model_copy(update={"predict_token": STRONG_TOKEN})
    publish_champion(guarded, pipelines["1"], 1)
    with TestClient(create_app(guarded)) as client:
        wait_until(lambda: client.get("/health").status_code == 200, what="champion loaded")
        body = {"records": records[:1]}
        assert client.post("/predict", json=body).status_code == 401
        wrong = client.post("/predict", json=body, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and "DPE_PREDICT_TOKEN" in wrong.json()["detail"]
        assert client.post("/predict/csv", files={"file": ("a.csv", b"x\n1\n")}).status_code == 401
        right = {"Authorization": f"Bearer {STRONG_TOKEN}"}
        assert client.post("/predict", json=body, headers=right).status_code == 200
        assert client.get("/health").status_code == 200  # only /predict* is guarded


def test_docs_work_offline(client):
    for page in ("/docs", "/redoc"):
        response = client.get(page)
        assert response.status_code == 200
        html = response.text
        assert "http://" not in html and "https://" not in html and "//" + "cdn" not in html
        urls = re.findall(r'(?:src|href)="([^"]+)"', html) + re.findall(
            r'(?:url|openapi_url)\s*[:=]\s*[\'"]([^\'"]+)[\'"]', html
        )
        assets = [url for url in urls if url.startswith("/docs-assets/")]
        assert assets, html
        for url in urls:
            assert url.startswith("/"), url
        for url in assets:
            asset = client.get(url)
            assert asset.status_code == 200 and len(asset.content) > 1000, url
    assert client.get("/openapi.json").status_code == 200


def test_the_root_url_is_an_index_of_the_routes(client):
    """Issue 23.11: the URL `make run` prints answered 404."""
    response = client.get("/")
    assert response.status_code == 200
    body = response.json()
    assert body["name"] == "DPE workbench API" and body["version"]
    for name, path in (("docs", "/docs"), ("health", "/health"), ("model", "/model")):
        assert body["links"][name] == path
        assert client.get(path).status_code == 200, path


def test_redoc_script_names_no_cdn(client):
    """Issue 23.12: ReDoc's script drew Redocly's logo from their CDN (broken offline)."""
    script = client.get("/docs-assets/redoc.standalone.js")
    assert script.status_code == 200 and len(script.content) > 500_000
    assert "cdn.redoc.ly" not in script.text
    assert "API docs by Redocly" in script.text  # the same script, only that address changed


def test_production_uvicorn_exits_with_the_reason(tmp_path):
    env = {"DPE_ENV": "production", "DPE_API_TOKEN": DEFAULT_API_TOKEN, "DPE_HOME": str(tmp_path)}
    port = str(free_port())
    completed = subprocess.run(
        [sys.executable, "-m", "uvicorn", "api.main:app", "--host", "127.0.0.1", "--port", port],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **env},
        timeout=60,
    )
    assert completed.returncode != 0
    # The logs are JSON lines on stdout (api.logs).
    events = [json.loads(line)["event"] for line in completed.stdout.splitlines()]
    reason = "refusing to start: DPE_ENV=production needs a strong DPE_API_TOKEN"
    assert any(event.startswith(reason) for event in events)


def test_production_with_a_real_token_starts(settings, pipelines):
    prod = settings.model_copy(update={"env": "production", "api_token": STRONG_TOKEN})
    publish_champion(prod, pipelines["1"], 1)
    with TestClient(create_app(prod)) as client:
        wait_until(lambda: client.get("/health").status_code == 200, what="champion loaded")
