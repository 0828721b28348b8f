"""A rough duration of a training run, said before it starts (the Train page).

Measured on the ADEME sample (1,653 labelled records) as the workbench runs a training: the
first of its process (the CV worker processes start with it), logged to an MLflow server as
`make run` starts one (`bench/bench_train_estimate.py`). Per family, in CPU seconds: a run's own
part (data, the fit on the training part, the label sets' calibration, evaluation, the
back-test's refits over its windows, MLflow logging: `RUN_SECONDS`, the mean of its runs
without and with a search, whose best candidate may fit faster or slower than the defaults),
one CV fold's fit (`FOLD_SECONDS`) and the workers' start (`WORKER_START_SECONDS`). On an idle
2-core machine a run takes its own part plus the search's part shared by N_JOBS workers; a
busy machine (load average above its cores) stretches that, and the page says how much. Costs
grow about linearly with the labelled rows. Refitted on 2026-12-08 (load 1–2), once every
training also back-tested itself and bytecode was compiled at install (the workers' start fell
from 11.8 s to under 3 s).
"""

import math
import os

from sklearn.model_selection import ParameterGrid

from core.modeling.models import RANDOM_CANDIDATES, search_space
from core.modeling.search import N_JOBS

REFERENCE_ROWS = 1_650
RUN_SECONDS = {
    "building-only": {"rules": 2.1, "logreg": 2.6, "rf": 11.8, "hgb": 21.5},
    "with-consumption": {
        "rules": 3.0,
        "sector-scale": 2.5,
        "logreg": 3.9,
        "rf": 11.1,
        "hgb": 29.6,
        "scale": 7.7,
    },
}
FOLD_SECONDS = {
    "building-only": {"logreg": 0.02, "rf": 0.53, "hgb": 1.19},
    "with-consumption": {"logreg": 0.04, "rf": 0.44, "hgb": 1.5, "scale": 0.35},
}
WORKER_START_SECONDS = 2.8  # the N_JOBS worker processes importing sklearn, pandas, core
BUSY_FACTOR = 1.5  # a load this many times the cores: the page warns of a longer run


def candidates(family: str, search: str) -> int:
    space = search_space(family, search)
    if not space:
        return 0
    return len(ParameterGrid(space)) if search == "grid" else RANDOM_CANDIDATES


def idle_seconds(feature_set: str, family: str, search: str, cv: int, labelled_rows: int) -> float:
    """Wall seconds of a training on an idle machine of this kind (2 cores)."""
    scale = max(labelled_rows, 1) / REFERENCE_ROWS
    seconds = RUN_SECONDS[feature_set].get(family, 20.0) * scale
    count = candidates(family, search)
    if count:
        folds = count * cv * FOLD_SECONDS[feature_set].get(family, 4.0) * scale
        seconds += (WORKER_START_SECONDS + folds) / N_JOBS
    return seconds


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{math.ceil(seconds / 60)} min"


def training_estimate(
    feature_set: str,
    family: str,
    search: str,
    cv: int,
    labelled_rows: int,
    load: float | None = None,
) -> str:
    """'Roughly N s on R labelled records (C candidates × F folds, then one final fit)', and
    about how long on this machine when it is busy (`load`: the 1-minute load
    average, read from the system when None)."""
    seconds = idle_seconds(feature_set, family, search, cv, labelled_rows)
    count = candidates(family, search)
    what = f"{count} candidates × {cv} folds, then one final fit" if count else "one fit"
    text = f"Roughly {_duration(seconds)} on {labelled_rows:,} labelled records ({what})"
    cores = os.cpu_count() or 1
    load = os.getloadavg()[0] if load is None else load
    if load > BUSY_FACTOR * cores:
        text += (
            f"; this machine is busy (load {load:.0f} on {cores} cores): expect about "
            f"{_duration(seconds * load / cores)}"
        )
    return text + "."
