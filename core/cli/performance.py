"""`performance`: the serving champion's realised scores on the labelled records as they arrive."""

from core.config import Settings
from core.monitoring import performance


def add_cli(subparsers) -> None:
    parser = subparsers.add_parser(
        "performance",
        help="realised scores of the champion on the labelled records each dataset version "
        "brought (accuracy, macro-F1, set coverage and size, the rules'), newest first",
    )
    parser.add_argument(
        "--score",
        action="store_true",
        help="score the champion now on the labelled records the dataset version added to the "
        "one before it, and keep the score (a lifecycle pass does this before it retrains)",
    )
    parser.add_argument(
        "--dataset", metavar="VERSION", help="with --score: this version (default: the current)"
    )
    parser.add_argument("--limit", type=int, help="at most this many scores, newest first")
    parser.set_defaults(run=_performance_command)


def _performance_command(args, settings: Settings) -> dict:
    if args.score:
        found = performance.score_version(settings, args.dataset)
        performance.record(settings, found)
    return {"scores": performance.history(settings, args.limit)}
