"""`drift`: logged predictions or a dataset version against the champion's training data."""

from core.config import Settings
from core.monitoring.drift import DriftReport, drift_report
from core.monitoring.prediction_store import SOURCES


def add_cli(subparsers) -> None:
    parser = subparsers.add_parser(
        "drift", help="drift of logged predictions or a dataset version against the champion"
    )
    window = parser.add_mutually_exclusive_group()
    window.add_argument(
        "--since", metavar="ISO_TIME", help="predictions logged since this time (no offset: UTC)"
    )
    window.add_argument(
        "--dataset", metavar="VERSION", help="the records this dataset version added"
    )
    parser.add_argument(
        "--source", choices=SOURCES, help="only the predictions logged by this surface"
    )
    parser.add_argument(
        "--client",
        help="only the predictions of this client, as the log names it: "
        "token:<hash> (a /predict token) or host:<ip>",
    )
    parser.set_defaults(run=_drift_command)


def _drift_command(args, settings: Settings) -> DriftReport:
    report = drift_report(
        settings,
        since=args.since,
        dataset_version=args.dataset,
        source=args.source,
        client=args.client,
    )
    # The per-bin shares are for charts (the Monitor page); the command keeps the figures.
    for result in [*report["features"].values(), report["label_shift"] or {}]:
        result.pop("bins", None)
    return report
