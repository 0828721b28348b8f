"""core.errors through the command line, as a script or the Airflow DAG sees it: each kind of
error exits with its code and, with --json, prints one `{"error": {...}}` object on stdout."""

import json
import socket

import pytest

from core.cli import main
from core.config import get_settings
from core.errors import Conflict, DpeError, InvalidInput, NotFound, Unavailable, unknown_host
from tests.support.champion import publish_champion
from tests.support.cli import cli_env, run_cli
from tests.support.servers import free_port


def test_the_kinds_say_what_to_do():
    table = {
        kind.__name__: (kind.code, kind.http_status, kind.exit_code, kind.retryable)
        for kind in (DpeError, InvalidInput, NotFound, Conflict, Unavailable)
    }
    assert table == {
        "DpeError": ("invalid_input", 422, 2, False),
        "InvalidInput": ("invalid_input", 422, 2, False),
        "NotFound": ("not_found", 404, 3, False),
        "Conflict": ("conflict", 409, 4, False),
        "Unavailable": ("unavailable", 503, 5, True),
    }
    assert Unavailable("MLflow is down").as_dict() == {
        "code": "unavailable",
        "message": "MLflow is down",
        "retryable": True,
    }


def test_a_name_that_does_not_resolve_is_told_apart_from_a_refused_connection():
    """DNS failures hide in the cause chain of the client's error (httpx, botocore)."""
    try:
        try:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        except socket.gaierror as dns:
            raise OSError("connect failed") from dns
    except OSError as wrapped:
        assert unknown_host(wrapped)
    assert not unknown_host(ConnectionRefusedError("refused"))


def _error(payload: dict | None) -> dict:
    assert payload is not None and set(payload) == {"error"}, payload
    return payload["error"]


@pytest.fixture
def cli(settings, monkeypatch, capsys):
    """`dpe ARGS --json` in this process (the CLI's imports are paid once, not per test); exit
    codes 2, 3 and 5 through a real process are in tests/core/data (ingest, warehouse)."""

    def run(*args: str, **env: str) -> tuple[int, dict | None, str]:
        for name, value in {**cli_env(settings), **env}.items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()
        try:
            code = main([*args, "--json"])
        finally:
            get_settings.cache_clear()
        out, err = capsys.readouterr()
        return code, json.loads(out), err

    return run


def test_a_setting_that_cannot_be_read_is_invalid_input(cli):
    code, payload, stderr = cli("status", DPE_MAX_BATCH_ROWS="many")
    error = _error(payload)
    assert code == 2 and error["code"] == "invalid_input" and not error["retryable"]
    assert "DPE_MAX_BATCH_ROWS" in error["message"]
    assert f"error: {error['message']}" in stderr  # the message on stderr, as without --json


def test_not_found_exits_3(cli):
    code, payload, _ = cli("describe")  # no dataset yet
    error = _error(payload)
    assert code == 3 and error["code"] == "not_found" and not error["retryable"]
    assert "no dataset yet" in error["message"]


def test_conflict_exits_4(cli, settings, pipeline, tmp_path):
    """A store whose champion file no longer matches its manifest contradicts itself."""
    manifest = publish_champion(settings, pipeline, 1)
    model = settings.home / "store" / "models" / "dpe" / "champion" / manifest.model_file
    model.write_bytes(model.read_bytes() + b"tampered")
    source = tmp_path / "in.csv"
    source.write_text("surface_utile\n100\n")
    code, payload, _ = cli("predict", "--input", str(source), "--output", str(tmp_path / "o.csv"))
    error = _error(payload)
    assert code == 4 and error["code"] == "conflict" and not error["retryable"]
    assert "does not match its sha256" in error["message"]


def test_unavailable_exits_5_from_a_pipeline_step_as_the_dag_runs_it(settings):
    """The DAG retries a step only on this: exit 5, `retryable` true."""
    closed = f"http://127.0.0.1:{free_port()}/data-fair/api/v1/datasets/dpe/lines"
    env = {**cli_env(settings), "DPE_HTTP_RETRIES": "0"}
    code, payload, stderr = run_cli("pipeline-step", "extract", "--source", closed, env=env)
    error = _error(payload)
    assert code == 5 and error == {**error, "code": "unavailable", "retryable": True}
    assert "ADEME API" in error["message"] and "Traceback" not in stderr
