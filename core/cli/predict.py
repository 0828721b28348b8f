"""`predict`: the labels of a CSV with the champion."""

import logging
import time
from pathlib import Path

from core.config import Settings
from core.monitoring.prediction_log import PredictionLogger
from core.progress import logged
from core.serving.batch import predict_csv
from core.serving.champion import load_champion

log = logging.getLogger(__name__)


def add_cli(subparsers) -> None:
    parser = subparsers.add_parser("predict", help="predict the labels of a CSV with the champion")
    parser.add_argument("--input", required=True, help="CSV of records (ADEME or snake_case names)")
    parser.add_argument(
        "--output",
        required=True,
        help="CSV to write: the input, then predicted_label, proba_A..proba_G, label_set (the "
        "labels kept at DPE_SET_COVERAGE joined by |, e.g. C|D), set_size, error, warning",
    )
    parser.set_defaults(run=_predict_command)


def _predict_command(args, settings: Settings) -> dict:
    # The logger flushes what is queued at interpreter exit.
    sink = PredictionLogger(settings).log if settings.log_predictions else None
    champion = load_champion(settings, sink=sink)
    log.info("predict: champion version %s, engines %s", champion.model_version, champion.engines)
    started = time.perf_counter()  # the CSV's own time: read, check, predict, write
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    counts = predict_csv(
        champion,
        args.input,
        output,
        source_tag="cli",
        progress=logged("predict", None, log),
    )
    return {
        **counts,
        "model_version": champion.model_version,
        "set_coverage": champion.set_coverage,
        "set_note": champion.set_note,
        "output": str(output),
        "seconds": round(time.perf_counter() - started, 2),
    }
