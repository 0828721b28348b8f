"""The command line: `dpe COMMAND [options] [--json]` (or `python -m core COMMAND ...`).

Each CLI module registers its own commands through `add_cli(subparsers)`; a command's
handler takes (args, settings) and returns a dict, printed as one JSON object with
`--json` (progress and logs go to stderr) or as readable lines without. The library
never imports this package.

A command that fails says why on stderr and exits with its kind's code (`core.errors`: 2
invalid input, 3 not found, 4 conflict, 5 unavailable, the only one worth retrying; 1 for
an unexpected error); with `--json` it also prints `{"error": {"code", "message",
"retryable"}}` on stdout.
"""

import argparse
import contextlib
import importlib
import json
import logging
import sys
from pathlib import Path

from pydantic import ValidationError

from core.config import get_settings
from core.errors import INTERNAL_ERROR, DpeError, InvalidInput

# command -> the module that registers it. Only the module of the command being run is
# imported, so a quick command doesn't pay for MLflow's or scikit-learn's import time.
COMMANDS = {
    "ingest": "core.cli.data",
    "describe": "core.cli.data",
    "status": "core.cli.data",
    "versions": "core.cli.data",
    "train": "core.cli.train",
    "backtest": "core.cli.train",
    "runs": "core.cli.registry",
    "promote": "core.cli.registry",
    "sync": "core.cli.sync",
    "predict": "core.cli.predict",
    "drift": "core.cli.drift",
    "pipeline": "core.cli.pipeline",
    "pipeline-step": "core.cli.pipeline",
    "api": "core.cli.serve",
    "workbench": "core.cli.serve",
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser for `command`, or for every command when it is unknown (e.g. --help)."""
    prog = "dpe" if Path(sys.argv[0]).name == "dpe" else "python -m core"
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    modules = [COMMANDS[command]] if command in COMMANDS else sorted(set(COMMANDS.values()))
    for module_name in modules:
        importlib.import_module(module_name).add_cli(subparsers)
    for command_parser in subparsers.choices.values():
        command_parser.add_argument("--json", action="store_true", help="print one JSON object")
    return parser


def print_human(result: dict) -> None:
    for key, value in result.items():
        if isinstance(value, dict | list):
            value = json.dumps(value, ensure_ascii=False, indent=2, default=str)
        print(f"{key}: {value}")


def print_json(result: dict) -> None:
    print(json.dumps(result, ensure_ascii=False, default=str))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv[0] if argv else None).parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(message)s")
    try:
        # Libraries print to stdout (MLflow's "View run" links): keep stdout for the result.
        with contextlib.redirect_stdout(sys.stderr):
            result = args.run(args, _settings())
    except DpeError as error:  # its kind gives the exit code (core.errors)
        print(f"error: {error}", file=sys.stderr)
        if args.json:
            print_json({"error": error.as_dict()})
        return error.exit_code
    except Exception as error:  # a bug: its traceback follows on stderr, exit code 1
        if args.json:
            message = f"unexpected {type(error).__name__}: {error}"
            print_json({"error": {"code": INTERNAL_ERROR, "message": message, "retryable": False}})
        raise
    if args.json:
        print_json(result)
    else:
        print_human(result)
    return 0


def _settings():
    """The settings; a DPE_ variable that cannot be read is the user's to fix (exit 2)."""
    try:
        return get_settings()
    except ValidationError as error:
        problems = "; ".join(
            f"DPE_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in error.errors()
        )
        raise InvalidInput(f"settings cannot be read (environment, .env): {problems}") from None
