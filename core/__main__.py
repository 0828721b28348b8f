"""The command line: `python -m core COMMAND [options] [--json]`.

Each pipeline module registers its own commands through `add_cli(subparsers)`;
a command's handler takes (args, settings) and returns a dict, printed as one JSON
object with `--json` (progress and logs go to stderr) or as readable lines without.
"""

import argparse
import importlib
import json
import logging
import sys

from core.config import get_settings
from core.errors import DpeError

COMMAND_MODULES = ("core.ingest", "core.warehouse")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m core", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).add_cli(subparsers)
    for command_parser in subparsers.choices.values():
        command_parser.add_argument("--json", action="store_true", help="print one JSON object")
    return parser


def print_human(result: dict) -> None:
    for key, value in result.items():
        if isinstance(value, dict | list):
            value = json.dumps(value, ensure_ascii=False, indent=2, default=str)
        print(f"{key}: {value}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(message)s")
    try:
        result = args.run(args, get_settings())
    except DpeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result, ensure_ascii=False, default=str))
    else:
        print_human(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
