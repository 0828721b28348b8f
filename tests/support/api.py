"""The API as it runs: uvicorn in its own process on 127.0.0.1, the store on S3 over HTTP."""

import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx
import uvicorn

from core.config import Settings
from tests.support.cli import ROOT, cli_env
from tests.support.servers import free_port, running

TOKEN = "test-admin-token"
RELOAD_INTERVAL_S = 0.3


def store_settings(settings: Settings, endpoint: str, bucket: str) -> Settings:
    """`settings` with the store in an S3 bucket; short timeouts so a dead store fails fast."""
    return settings.model_copy(
        update={
            "model_store_uri": f"s3://{bucket}/store",
            "s3_endpoint_url": endpoint,
            "http_timeout_s": 2.0,
            "http_retries": 1,
        }
    )


@contextmanager
def api_server(settings: Settings, log_dir) -> Iterator[str]:
    """uvicorn api.main:app on a free loopback port, until the block ends; yields its URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **cli_env(settings),
        "DPE_HTTP_TIMEOUT_S": str(settings.http_timeout_s),
        "DPE_HTTP_RETRIES": str(settings.http_retries),
        "DPE_RELOAD_INTERVAL_S": str(RELOAD_INTERVAL_S),
        "DPE_API_TOKEN": TOKEN,
    }
    command = [sys.executable, "-m", "uvicorn", "api.main:app", "--host", "127.0.0.1"]
    command += ["--port", str(port)]
    # /openapi.json answers as soon as the app runs, model or not: /health may well be 503.
    with running(command, f"{url}/openapi.json", log_dir / "api.log", env=env, cwd=ROOT):
        yield url


@contextmanager
def api_process(settings: Settings, log_dir, **env: str) -> Iterator[tuple[str, int]]:
    """As `api_server`, with these extra environment variables (DPE_MAX_UPLOAD_MB="1"...)
    and the prediction log off; yields the URL and the server's PID (to read its memory)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **cli_env(settings),
        "DPE_RELOAD_INTERVAL_S": str(RELOAD_INTERVAL_S),
        "DPE_API_TOKEN": TOKEN,
        "DPE_LOG_PREDICTIONS": "false",
        **env,
    }
    command = [sys.executable, "-m", "uvicorn", "api.main:app", "--host", "127.0.0.1"]
    command += ["--port", str(port)]
    with running(command, f"{url}/openapi.json", log_dir / "api.log", env=env, cwd=ROOT) as p:
        yield url, p.pid


def wait_until(check: Callable[[], bool], timeout_s: float = 90, what: str = "condition") -> None:
    """Poll `check` until it holds. The bound only decides when to give up: it is generous
    because a loaded machine (CI runs tests on several workers) loads a champion slowly."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"{what} not reached within {timeout_s} s")


def health(url: str) -> tuple[int, dict]:
    response = httpx.get(f"{url}/health", timeout=5)
    return response.status_code, response.json()


def serving(url: str, version: str | None = None) -> bool:
    code, body = health(url)
    return code == 200 and (version is None or body["model_version"] == version)


@contextmanager
def app_in_thread(app, **config) -> Iterator[str]:
    """`app` served by uvicorn on a loopback socket, from a thread of this process, until
    the block ends; yields its URL. `config`: more uvicorn.Config options."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, **config))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, what="uvicorn started")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
