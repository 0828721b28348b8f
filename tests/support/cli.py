"""Running the CLI the way a user does: `python -m core ... --json` in a subprocess."""

import json
import os
import subprocess
import sys
from pathlib import Path

from core.config import Settings

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str, env: dict | None = None, cwd: Path = ROOT):
    """Run `python -m core ARGS --json`; returns (exit code, parsed stdout or None, stderr)."""
    completed = subprocess.run(
        [sys.executable, "-m", "core", *args, "--json"],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        timeout=600,
    )
    try:
        payload = json.loads(completed.stdout) if completed.stdout.strip() else None
    except json.JSONDecodeError:
        payload = None
    return completed.returncode, payload, completed.stderr


def cli_env(settings: Settings) -> dict:
    """Environment variables that make a CLI subprocess use these settings."""
    env = {
        "DPE_HOME": str(settings.home),
        "MLFLOW_TRACKING_URI": settings.tracking_uri,
        "DPE_EXPERIMENT_NAME": settings.experiment_name,
        "DPE_REGISTERED_MODEL_NAME": settings.registered_model_name,
    }
    if settings.model_store_uri:
        env["DPE_MODEL_STORE_URI"] = settings.model_store_uri
    if settings.s3_endpoint_url:
        env["DPE_S3_ENDPOINT_URL"] = settings.s3_endpoint_url
    return env
