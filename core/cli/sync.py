"""`sync`: the store's manifest follows the MLflow registry alias `champion`."""

import contextlib
import dataclasses
import logging

from core.config import Settings
from core.errors import DpeError
from core.tracking.sync import sync_champion, watch_champion

log = logging.getLogger(__name__)


def add_cli(subparsers) -> None:
    parser = subparsers.add_parser(
        "sync", help="publish to the store the model version the alias `champion` points at"
    )
    parser.add_argument(
        "--watch",
        type=float,
        metavar="SECONDS",
        help="keep following the alias, checking every SECONDS (until stopped)",
    )
    parser.set_defaults(run=_sync_command)


def _sync_command(args, settings: Settings) -> dict:
    if args.watch is None:
        return dataclasses.asdict(sync_champion(settings))
    if args.watch <= 0:
        raise DpeError("--watch takes a number of seconds above 0")
    log.info("sync: following the alias `champion` every %s s (Ctrl-C stops)", args.watch)
    # Each pass asks MLflow's /health first: httpx would log that request every pass. The
    # watch logs what changes instead (core.tracking.sync.watch_champion).
    logging.getLogger("httpx").setLevel(logging.WARNING)
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is the normal way to stop
        watch_champion(settings, args.watch)
    return {"status": "stopped"}
