"""A rough duration of a training run, said before it starts (the Train page).

Measured on a 2-core machine on the ADEME sample (1,653 labelled records; search none and
grid, 5 folds): the cost of one fit per family and of a run's fixed part (data, baselines,
evaluation, MLflow logging). Fits scale about linearly with the labelled rows; CV folds run
N_JOBS at a time.
"""

import math

from sklearn.model_selection import ParameterGrid

from core.modeling.models import RANDOM_CANDIDATES, search_space
from core.modeling.search import N_JOBS

REFERENCE_ROWS = 1_650
FIT_SECONDS = {
    "rules": 0.5,
    "sector-scale": 0.5,
    "logreg": 0.4,
    "rf": 2.2,
    "hgb": 1.8,
    "scale": 1.8,
}
FIXED_SECONDS = 1.5


def candidates(family: str, search: str) -> int:
    space = search_space(family, search)
    if not space:
        return 0
    return len(ParameterGrid(space)) if search == "grid" else RANDOM_CANDIDATES


def training_estimate(family: str, search: str, cv: int, labelled_rows: int) -> str:
    """'About N s (C candidates × F folds)' or minutes, for the Train page."""
    per_fit = FIT_SECONDS.get(family, 2.0) * max(labelled_rows, 1) / REFERENCE_ROWS
    count = candidates(family, search)
    fits = 1 + math.ceil(count * cv / N_JOBS)
    seconds = FIXED_SECONDS + per_fit * fits
    what = f"{count} candidates × {cv} folds, then one final fit" if count else "one fit"
    took = f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"
    return f"Roughly {took} on {labelled_rows:,} labelled records ({what})."
