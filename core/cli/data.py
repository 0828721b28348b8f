"""`ingest`, `describe`, `status`, `versions`: the data commands."""

import logging

from core.config import Settings
from core.data import ingest, warehouse
from core.errors import NotFound
from core.progress import logged

log = logging.getLogger("core.data.ingest")


def add_cli(subparsers) -> None:
    parser = subparsers.add_parser("ingest", help="load ADEME records; new dataset version")
    parser.add_argument(
        "--source",
        help="ADEME CSV export, JSON API page(s) (file or folder) or API URL "
        "(default: DPE_SOURCE, the ADEME API)",
    )
    parser.add_argument(
        "--limit", type=_positive_int, help="at most N records (API default: DPE_INGEST_LIMIT)"
    )
    parser.add_argument(
        "--preview",
        action="store_true",
        help="only count the records it would add, update and leave unchanged; write nothing",
    )
    parser.set_defaults(run=_ingest_command)

    parser = subparsers.add_parser("describe", help="profile of the current dataset version")
    parser.set_defaults(run=lambda args, settings: warehouse.describe(settings))

    parser = subparsers.add_parser("status", help="current dataset version and its counts")
    parser.add_argument(
        "--quiet-if-data",
        action="store_true",
        help="print nothing; exit non-zero when there is no dataset yet (`status || ingest`)",
    )
    parser.set_defaults(run=_status_command)

    parser = subparsers.add_parser("versions", help="every dataset version, newest first")
    parser.set_defaults(run=lambda args, settings: {"versions": warehouse.list_versions(settings)})


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise ValueError(text)
    return value


def _ingest_command(args, settings: Settings) -> dict:
    source = args.source or settings.source
    if args.preview:
        return dict(ingest.preview(settings, source, args.limit))
    return dict(ingest.ingest(settings, source, args.limit, logged("ingest", None, log)))


def _status_command(args, settings: Settings) -> dict:
    result = warehouse.status(settings)
    if args.quiet_if_data:
        if result is None:
            raise NotFound(warehouse.NO_DATA)
        return {}  # nothing to print: the exit code says it all
    return result or {"dataset_version": None}
