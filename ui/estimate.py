"""A rough duration of a training run, said before it starts (the Train page).

Measured on the ADEME sample (1,653 labelled records) as the workbench runs a training: the
first of its process (the CV worker processes start with it, a few seconds each), logged to
an MLflow server as `make run` starts one. Per family, in CPU seconds: a run's own part (data,
one fit on the training part, evaluation, MLflow logging: `RUN_SECONDS`), one CV fold's fit
(`FOLD_SECONDS`) and the workers' start (`WORKER_START_SECONDS`). On an idle 2-core machine a
run takes its own part plus the search's part shared by N_JOBS workers; a busy machine (load
average above its cores) stretches that, and the page says how much. Costs grow about
linearly with the labelled rows. The previous figures (one fit per fold, no worker start, a
1.5 s fixed part) were 2 to 4 times low (issue 23).
"""

import math
import os

from sklearn.model_selection import ParameterGrid

from core.modeling.models import RANDOM_CANDIDATES, search_space
from core.modeling.search import N_JOBS

REFERENCE_ROWS = 1_650
# With the consumption a learned family's run also checks its monotonicity (each test
# building predicted at 300 consumptions): about twice the work. `scale` was not measured
# (a 100-tree forest and the scales): taken as rf's.
RUN_SECONDS = {
    "building-only": {"rules": 2.9, "logreg": 3.0, "rf": 7.0, "hgb": 8.6},
    "with-consumption": {
        "rules": 3.6,
        "sector-scale": 2.8,
        "logreg": 5.8,
        "rf": 13.7,
        "hgb": 22.4,
        "scale": 13.7,
    },
}
FOLD_SECONDS = {
    "building-only": {"logreg": 0.05, "rf": 1.0, "hgb": 2.1},
    "with-consumption": {"logreg": 0.4, "rf": 1.3, "hgb": 3.7, "scale": 1.3},
}
WORKER_START_SECONDS = 11.8  # the N_JOBS worker processes importing sklearn, pandas, core
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
