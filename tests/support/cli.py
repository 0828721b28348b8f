"""Running the CLI the way a user does: `python -m core ... --json` in a subprocess."""

import json
import os
import subprocess
import sys
from pathlib import Path

from core.config import Settings

ROOT = Path(__file__).resolve().parents[2]


def python_json(code: str, given: object = None):
    """Run `code` in a fresh interpreter of this checkout, `given` on its stdin as JSON; the
    JSON it prints (what a module imports is only seen from a process of its own)."""
    completed = subprocess.run(
        [sys.executable, "-c", code],
        input=json.dumps(given),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)


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


# Runs the CLI with one function replaced by one that kills the process (SIGKILL: no
# cleanup, no `finally`), before or after calling the original.
_KILLED_AT = """
import importlib, os, signal, sys
where, when, *argv = sys.argv[1:]
module, name = where.rsplit(".", 1)
owner = importlib.import_module(module)
original = getattr(owner, name)
def killed(*args, **kwargs):
    if when == "after":
        original(*args, **kwargs)
    os.kill(os.getpid(), signal.SIGKILL)
setattr(owner, name, killed)
from core.cli import main
sys.exit(main(argv))
"""


def run_cli_killed(where: str, when: str, *args: str, env: dict | None = None) -> int:
    """Run `python -m core ARGS --json`, killed `when` ("before"/"after") the function
    `where` ("core.data.ingest.ingest") runs; returns the exit code (-9 when killed)."""
    completed = subprocess.run(
        [sys.executable, "-c", _KILLED_AT, where, when, *args, "--json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        timeout=600,
    )
    return completed.returncode
