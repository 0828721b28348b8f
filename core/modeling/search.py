"""Hyper-parameter search with progress: candidates scored one at a time by CV in worker
processes, progress reported between them from this process.

The progress callback never reaches the workers: it may hold what cannot be pickled
(Streamlit elements, locks), and the search object is what is sent to them.
"""

from collections.abc import Callable
from contextvars import ContextVar

import pandas as pd
from sklearn.model_selection import (
    GridSearchCV,
    ParameterGrid,
    ParameterSampler,
    RandomizedSearchCV,
)
from threadpoolctl import threadpool_limits

from core.modeling.models import RANDOM_CANDIDATES, search_space
from core.progress import Progress

N_JOBS = 2  # CV folds in parallel processes; this machine has 2 cores

# What the search being fitted reports after each candidate. A context variable, not an
# attribute of the search: the search object is pickled to worker processes, and a
# progress callback may hold what cannot be pickled (Streamlit elements, locks).
_ON_CANDIDATE: ContextVar[Callable[[int, int], None]] = ContextVar("on_candidate")


class _SteppedSearch:
    """A search that evaluates one candidate at a time (its CV folds in parallel), so
    progress is reported between candidates, from this process; results are GridSearchCV's."""

    def _candidates(self):
        raise NotImplementedError

    def _run_search(self, evaluate_candidates):
        candidates = list(self._candidates())
        on_candidate = _ON_CANDIDATE.get(lambda done, total: None)
        for done, params in enumerate(candidates, 1):
            evaluate_candidates([params])
            on_candidate(done, len(candidates))


class _GridSearch(_SteppedSearch, GridSearchCV):
    def _candidates(self):
        return ParameterGrid(self.param_grid)


class _RandomSearch(_SteppedSearch, RandomizedSearchCV):
    def _candidates(self):
        return ParameterSampler(
            self.param_distributions, self.n_iter, random_state=self.random_state
        )


def make_search(pipeline, family: str, search: str, folds, seed: int):
    """The search object for `search`, or None when there is nothing to tune."""
    space = search_space(family, search)
    if not space:
        return None
    common = {"scoring": "f1_macro", "cv": folds, "n_jobs": N_JOBS}
    if search == "grid":
        return _GridSearch(pipeline, space, **common)
    return _RandomSearch(pipeline, space, n_iter=RANDOM_CANDIDATES, random_state=seed, **common)


def fit_search(pipeline, search_cv, X, y, report: Progress):
    """Fit the search (or the bare pipeline): the fitted model."""
    # One OpenMP/BLAS thread per process: folds already run in N_JOBS processes, and
    # OpenMP threads spin-waiting on a busy 2-core machine made HGB ~20x slower.
    with threadpool_limits(1):
        if search_cv is None:
            report(0.1, "fitting (no search)")
            return pipeline.fit(X, y)
        folds = search_cv.cv.get_n_splits()
        report(0.1, f"searching: {folds}-fold CV per candidate")

        def on_candidate(done: int, total: int) -> None:
            report(0.1 + 0.65 * done / total, f"candidate {done}/{total} scored on {folds} folds")

        token = _ON_CANDIDATE.set(on_candidate)
        try:
            search_cv.fit(X, y)
        finally:
            _ON_CANDIDATE.reset(token)
    return search_cv.best_estimator_


def cv_results(search_cv) -> pd.DataFrame:
    results = pd.DataFrame(search_cv.cv_results_)
    columns = ["rank_test_score", "mean_test_score", "std_test_score", "mean_fit_time"]
    params = pd.DataFrame(list(results["params"])).add_prefix("param.")
    return pd.concat([results[columns], params], axis=1).sort_values("rank_test_score")
