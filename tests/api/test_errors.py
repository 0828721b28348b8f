"""api.errors: every error answer is `{"detail", "code"}`, the library's kinds mapped once to
their status (the real app, in-process), the same codes in the OpenAPI schema."""

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from core.errors import Conflict, DpeError, InvalidInput, NotFound, Unavailable
from tests.support.api import TOKEN, wait_until
from tests.support.champion import publish_champion


@pytest.fixture
def app(settings):
    return create_app(settings.model_copy(update={"api_token": TOKEN, "max_upload_mb": 1}))


@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [
        (DpeError, 422, "invalid_input"),
        (InvalidInput, 422, "invalid_input"),
        (NotFound, 404, "not_found"),
        (Conflict, 409, "conflict"),
        (Unavailable, 503, "unavailable"),
    ],
)
def test_each_kind_is_answered_with_its_status_and_code(app, kind, status, code):
    async def failing():
        raise kind("what went wrong, for a person")

    app.add_api_route("/failing", failing)  # a route like any other, behind the same handlers
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/failing")
    assert response.status_code == status
    assert response.json() == {"detail": "what went wrong, for a person", "code": code}


def test_an_unexpected_error_is_a_500_internal_error_without_its_text(app):
    async def broken():
        raise RuntimeError("secret internals")

    app.add_api_route("/broken", broken)
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/broken")
    assert response.status_code == 500
    body = response.json()
    assert body["code"] == "internal_error" and "secret" not in body["detail"]


def test_the_api_own_refusals_carry_a_code_too(app, settings, pipelines):
    with TestClient(app, raise_server_exceptions=False) as client:
        wait_until(lambda: client.get("/health").status_code == 503, what="no champion")
        answers = {
            "no model loaded": client.post("/predict", json={"records": [{}]}),
            "unknown route": client.get("/nowhere"),
            "no token": client.post("/admin/reload"),
            "too large": client.post(
                "/predict/csv", files={"file": ("big.csv", b"surface_utile\n" + b"1\n" * 600_000)}
            ),
        }
    codes = {why: (r.status_code, r.json()["code"]) for why, r in answers.items()}
    assert codes == {
        "no model loaded": (503, "unavailable"),
        "unknown route": (404, "not_found"),
        "no token": (401, "unauthorized"),
        "too large": (413, "too_large"),
    }
    assert answers["no token"].headers["www-authenticate"] == "Bearer"


def test_an_unreadable_csv_is_invalid_input_and_predictions_carry_their_problems(
    app, settings, pipelines
):
    publish_champion(settings, pipelines["1"], 1)
    with TestClient(app, raise_server_exceptions=False) as client:
        wait_until(lambda: client.get("/health").status_code == 200, what="champion loaded")
        refused = client.post("/predict/csv", files={"file": ("other.csv", b"name\nhall\n")})
        not_the_schema = client.post("/predict", json={"rows": []})
        records = [{"surface_utile": 850.0}, {"surface_utile": -3, "annee_construction": 1950.5}]
        predictions = client.post("/predict", json={"records": records}).json()["predictions"]
    assert (refused.status_code, refused.json()["code"]) == (422, "invalid_input")
    assert (not_the_schema.status_code, not_the_schema.json()["code"]) == (422, "invalid_input")
    assert not_the_schema.json()["errors"][0]["loc"][:2] == ["body", "records"]
    assert predictions[0]["errors"] == [] and predictions[0]["error"] is None
    assert predictions[1]["errors"] == [
        {
            "field": "surface_utile",
            "code": "below_minimum",
            "message": "Surface_utile=-3 must be > 0",
        },
        {
            "field": "annee_construction",
            "code": "not_an_integer",
            "message": "Année_construction=1950.5 is not an integer",
        },
    ]
    assert predictions[1]["error"] == "; ".join(p["message"] for p in predictions[1]["errors"])


def test_openapi_documents_the_codes(app):
    with TestClient(app) as client:
        schema = client.get("/openapi.json").json()
    components = schema["components"]["schemas"]
    assert "code" in components["Problem"]["required"]
    assert "`unavailable` (503)" in components["Problem"]["properties"]["code"]["description"]
    problem = components["RecordProblem"]["properties"]["code"]
    assert "below_minimum" in problem["enum"] and "`no_known_field`" in problem["description"]
    assert "errors" in components["Prediction"]["properties"]
    predict = schema["paths"]["/predict"]["post"]["responses"]
    assert predict["503"]["description"].startswith("`unavailable`")
    assert predict["422"]["description"].startswith("`invalid_input`")
