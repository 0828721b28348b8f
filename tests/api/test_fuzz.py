"""Schemathesis against the API as it runs (uvicorn on loopback, its store on S3 over HTTP):
`--checks all` over every phase (examples, coverage, fuzzing), with positive and negative
data. The API must keep to its own OpenAPI schema: documented statuses, bodies and headers,
schema-valid requests accepted, invalid ones refused with a 4xx, never a 5xx."""

import subprocess
import sys
from pathlib import Path

import httpx

from tests.support.api import TOKEN, api_process, serving, store_settings, wait_until
from tests.support.champion import publish_champion

CONFIG = Path(__file__).with_name("schemathesis.toml")
EXAMPLES = 30  # per operation and phase: the run stays well under 90 s on 2 cores


def test_schemathesis_checks_all(settings, s3_endpoint, s3_bucket, pipelines, tmp_path):
    settings = store_settings(settings, s3_endpoint, s3_bucket)
    publish_champion(settings, pipelines["1"], 1)
    # Schemathesis also sends wrong tokens on purpose: they must stay 401 here, not 429.
    with api_process(settings, tmp_path, DPE_ADMIN_FAILURES_PER_MINUTE="100000") as (url, _):
        wait_until(lambda: serving(url, "1"), what="champion served")
        # /readyz is 503 (a 5xx, by design) until the champion's engines are checked.
        wait_until(lambda: httpx.get(f"{url}/readyz").status_code == 200, 60, "ready")
        command = [sys.executable, "-m", "schemathesis.cli", "--config-file", str(CONFIG)]
        command += ["run", f"{url}/openapi.json", "--checks", "all", "--mode", "all"]
        command += ["--max-examples", str(EXAMPLES), "--seed", "16", "--no-color"]
        command += ["--header", f"Authorization: Bearer {TOKEN}", "--request-timeout", "30"]
        command += ["--generation-database", "none"]
        # In tmp_path: Schemathesis keeps a cache (.schemathesis/) in its working directory.
        completed = subprocess.run(
            command, capture_output=True, text=True, timeout=300, cwd=tmp_path
        )
    report = completed.stdout[-6000:] + completed.stderr[-2000:]
    assert completed.returncode == 0, report
    assert "Tested: 9" in completed.stdout, report  # /, /livez, /readyz, /metrics too
