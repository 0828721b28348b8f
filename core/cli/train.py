"""`train` and `backtest`: a model family on a feature set, logged to MLflow."""

from dataclasses import asdict

from core.config import Settings
from core.data.feature_sets import FEATURE_SETS
from core.modeling import backtest, train
from core.modeling.models import DEFAULT_MODELS, FAMILIES, SEARCHES
from core.modeling.splits import SPLITS


def _folds(text: str) -> int:
    value = int(text)
    if value < 2:
        raise ValueError(text)
    return value


def _fraction(text: str) -> float:
    value = float(text)
    if not 0 < value < 1:
        raise ValueError(text)
    return value


def add_cli(subparsers) -> None:
    parser = subparsers.add_parser("train", help="train a model and log it to MLflow")
    _model_options(parser)
    parser.add_argument(
        "--search", default="grid", choices=SEARCHES, help="hyper-parameter search (none: defaults)"
    )
    parser.add_argument("--cv", type=_folds, default=5, help="CV folds (>= 2)")
    parser.add_argument(
        "--split",
        default="time",
        choices=SPLITS,
        help="test on the newest records (time, default) or a stratified random draw",
    )
    parser.add_argument(
        "--test-size", type=_fraction, default=train.TEST_SIZE, help="test fraction (0-1)"
    )
    parser.add_argument("--seed", type=int, default=train.SEED, help="random seed")
    parser.set_defaults(run=_train_command)

    parser = subparsers.add_parser(
        "backtest", help="rolling-origin evaluation of a model family, rules alongside"
    )
    _model_options(parser)
    parser.add_argument(
        "--windows", type=_folds, default=backtest.WINDOWS, help="test windows (>= 2)"
    )
    parser.set_defaults(run=_backtest_command)


def _model_options(parser) -> None:
    parser.add_argument(
        "--features",
        required=True,
        choices=tuple(FEATURE_SETS),
        help="the record fields the model reads (with-consumption leaks the label)",
    )
    parser.add_argument(
        "--model", choices=FAMILIES, help="default: the best family for the feature set"
    )
    parser.add_argument("--dataset", help="dataset version (default: the current one)")


def _train_command(args, settings: Settings) -> dict:
    return dict(
        train.train(
            settings,
            args.features,
            args.model or DEFAULT_MODELS[args.features],
            search=args.search,
            cv=args.cv,
            dataset_version=args.dataset,
            seed=args.seed,
            test_size=args.test_size,
            split=args.split,
        )
    )


def _backtest_command(args, settings: Settings) -> dict:
    found = backtest.backtest(
        settings,
        args.features,
        args.model or DEFAULT_MODELS[args.features],
        windows=args.windows,
        dataset_version=args.dataset,
    )
    return asdict(found)
