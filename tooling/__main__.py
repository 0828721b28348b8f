"""`python -m tooling generate --rows N --output CSV [--seed S] [--json]`: synthetic ADEME
records in the official CSV export format, for tests, benchmarks and demos."""

import argparse
import json
import logging
import sys
from pathlib import Path

from tooling.synth import write_csv


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tooling", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    generate = subparsers.add_parser(
        "generate", help="write synthetic ADEME records (official CSV format)"
    )
    generate.add_argument("--rows", type=int, required=True, help="number of records")
    generate.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    generate.add_argument("--output", type=Path, required=True, help="CSV file to write")
    generate.add_argument("--json", action="store_true", help="print one JSON object")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(message)s")
    if args.rows < 0 or args.seed < 0:
        print("error: --rows and --seed must be >= 0", file=sys.stderr)
        return 2
    path = write_csv(args.output, args.rows, args.seed)
    result = {"rows": args.rows, "path": str(path)}
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{args.rows} records written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
