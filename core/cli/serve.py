"""`api` and `workbench`: start the FastAPI sidecar or the Streamlit workbench on loopback.

They replace this process with uvicorn's or Streamlit's, at the host and port the settings
give (DPE_HOST, DPE_API_PORT, DPE_UI_PORT), so an installed package runs without its
repository: `dpe api`, `dpe workbench`.
"""

import os
import sys
from importlib.util import find_spec

from core.config import Settings
from core.errors import DpeError


def add_cli(subparsers) -> None:
    api = subparsers.add_parser("api", help="serve the champion over HTTP (FastAPI, uvicorn)")
    api.set_defaults(run=_api_command)
    workbench = subparsers.add_parser("workbench", help="open the Streamlit workbench")
    workbench.set_defaults(run=_workbench_command)


def _api_command(args, settings: Settings) -> dict:
    # --no-proxy-headers: uvicorn would believe X-Forwarded-For from any loopback peer; the
    # app believes it only from DPE_TRUSTED_PROXIES.
    _replace_process(
        ["-m", "uvicorn", "api.main:app", "--host", settings.host, "--port", str(settings.api_port)]
        + ["--no-proxy-headers"]
    )
    return {}  # not reached: the process is uvicorn's now


def _workbench_command(args, settings: Settings) -> dict:
    # The pages (app.py) behind the login gate (ui/gate.py): what a deployment serves.
    spec = find_spec("workbench_server")
    if spec is None or spec.origin is None:
        raise DpeError("the workbench (workbench_server.py) is not installed with this package")
    _replace_process(
        [
            "-m",
            "streamlit",
            "run",
            spec.origin,
            "--server.address",
            settings.host,
            "--server.port",
            str(settings.ui_port),
            "--server.headless",
            "true",
            "--browser.gatherUsageStats",
            "false",
        ]
    )
    return {}


def _replace_process(arguments: list[str]) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, *arguments])
