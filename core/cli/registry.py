"""`runs` and `promote`: the training runs in MLflow and the champion."""

from core.config import Settings
from core.data.feature_sets import FEATURE_SETS
from core.tracking.registry import Promotion, list_runs, promote


def add_cli(subparsers) -> None:
    runs = subparsers.add_parser("runs", help="list training runs, best macro-F1 first")
    runs.add_argument(
        "--features", choices=tuple(FEATURE_SETS), help="only runs on this feature set"
    )
    runs.add_argument("--dataset", help="only runs on this dataset version")
    runs.set_defaults(run=_runs_command)
    promote_parser = subparsers.add_parser(
        "promote", help="register a run's model and make it the champion"
    )
    promote_parser.add_argument("run_id", metavar="RUN_ID", help="the MLflow run (see `runs`)")
    promote_parser.set_defaults(run=_promote_command)


def _runs_command(args, settings: Settings) -> dict:
    frame = list_runs(settings, feature_set=args.features, dataset_version=args.dataset)
    frame["start_time"] = frame["start_time"].map(lambda t: t.isoformat())
    records = frame.astype(object).where(frame.notna(), None).to_dict("records")
    return {"experiment": settings.experiment_name, "count": len(records), "runs": records}


def _promote_command(args, settings: Settings) -> Promotion:
    return promote(settings, args.run_id)
