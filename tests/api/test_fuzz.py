"""Schemathesis against the served OpenAPI schema, over a real socket: whatever a client
sends that the schema allows (or nearly), the API never answers 5xx."""

import boto3
import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from api.main import create_app
from core.config import Settings
from tests.api.conftest import api_server, serving, store_settings, wait_until
from tests.champion import publish_champion


@pytest.fixture(scope="module")
def api_url(s3_endpoint, pipelines, tmp_path_factory):
    home = tmp_path_factory.mktemp("fuzz")
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket="fuzz-store")
    base = Settings(_env_file=None, home=home / "home", mlflow_tracking_uri="sqlite:///x.db")
    store = store_settings(base, s3_endpoint, "fuzz-store")
    publish_champion(store, pipelines["1"], 1)
    with api_server(store, home) as url:
        wait_until(lambda: serving(url, "1"), what="champion served")
        yield url


# The schema the app serves, made in-process at collection; the cases go over the socket.
schema = schemathesis.openapi.from_dict(create_app().openapi())


@schema.parametrize()
@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
def test_no_server_error(case, api_url):
    response = case.call(base_url=api_url, timeout=30)
    assert response.status_code < 500, f"{case.method} {case.path}: {response.text[:500]}"
