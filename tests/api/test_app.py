"""The API in-process (TestClient): request validation, limits, the admin token, the
production token rule, a missing champion, and the swap that spares requests in flight."""

import os
import subprocess
import sys

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from api.state import ServingState
from core.config import DEFAULT_API_TOKEN
from tests.api.conftest import TOKEN, wait_until
from tests.champion import publish_champion
from tests.conftest import ROOT
from tests.servers import free_port


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


@pytest.fixture
def client(limited, pipelines):
    publish_champion(limited, pipelines["1"], 1)
    with TestClient(create_app(limited), raise_server_exceptions=False) as client:
        wait_until(lambda: client.get("/health").status_code == 200, what="champion loaded")
        yield client


def test_text_in_a_number_field_is_a_422_naming_it(client):
    response = client.post("/predict", json={"records": [{"surface_utile": "grand"}]})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "records", 0, "surface_utile"]


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
    cases = [records[0], {"secteur_activite": "Z : Zoo", "annee_construction": 1990.5}]
    response = client.post("/predict", json={"records": cases})
    assert response.status_code == 200
    ok, refused = response.json()["predictions"]
    assert ok["label"] is not None and ok["error"] is None
    assert refused["label"] is None and refused["probabilities"] is None
    assert "Année_construction=1990.5 is not an integer" in refused["error"]
    assert "Secteur_activité='Z : Zoo' is not a category" in refused["error"]


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


def test_csv_route_answers_csv_with_counts(client):
    data = "Surface_utile;Conso_kWhep/m²/an\n250,5;120\n0;80\n".encode("cp1252")
    response = client.post("/predict/csv", files={"file": ("in.csv", data)})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert (response.headers["x-rows"], response.headers["x-rejected"]) == ("2", "1")
    lines = response.content.decode("utf-8").splitlines()
    assert lines[0].startswith("Surface_utile,Conso_kWhep/m²/an,predicted_label,proba_A")
    assert lines[1].startswith('"250,5",120,') and lines[2].endswith("Surface_utile=0 must be > 0")


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


@pytest.mark.parametrize("token", ["", DEFAULT_API_TOKEN])
def test_production_refuses_a_missing_or_default_token(settings, token):
    prod = settings.model_copy(update={"env": "production", "api_token": token})
    with pytest.raises(Exception, match="DPE_API_TOKEN"), TestClient(create_app(prod)):
        pass


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
    assert "refusing to start: DPE_ENV=production needs a DPE_API_TOKEN" in completed.stderr


def test_production_with_a_real_token_starts(settings, pipelines):
    prod = settings.model_copy(update={"env": "production", "api_token": "a-real-secret"})
    publish_champion(prod, pipelines["1"], 1)
    with TestClient(create_app(prod)) as client:
        wait_until(lambda: client.get("/health").status_code == 200, what="champion loaded")
