"""Which labelled records train and which test: the newest ones (time, the default) or a
stratified random draw.

Real use is "train on the past, predict the future", so the default test set is the
newest records by diagnostic date (`date_etablissement_dpe`, else the reception date), and
the CV folds inside the training part are time-ordered too (each fold validates on records
newer than the ones it trained on). A random split scores a few points higher than what a
user will see: it stays available, and is logged as such.
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold, TimeSeriesSplit, train_test_split

from core.errors import DpeError

SPLITS = ("time", "random")
WINDOWS = 4  # back-test windows
SPAN = 0.5  # the newest half of the records is tested, window by window
DATE_FIELDS = ("date_etablissement_dpe", "date_reception_dpe")


@dataclass(frozen=True)
class Split:
    """Training and test rows; the training rows oldest first under a time split."""

    kind: str  # "time" | "random"
    X_train: pd.DataFrame
    X_test: pd.DataFrame
    y_train: np.ndarray
    y_test: np.ndarray
    dates_train: pd.Series
    dates_test: pd.Series

    @property
    def test_from(self) -> str | None:
        return _day(self.dates_test.min())

    @property
    def test_to(self) -> str | None:
        return _day(self.dates_test.max())

    def folds(self, cv: int, seed: int):
        """The CV splitter of the training part: time-ordered under a time split."""
        if self.kind == "time":
            return TimeSeriesSplit(cv)
        return StratifiedKFold(cv, shuffle=True, random_state=seed)


def record_dates(frame: pd.DataFrame) -> pd.Series:
    """Each record's date: the diagnostic's, else its reception by ADEME (NaT if neither)."""
    first, second = (pd.to_datetime(frame[name], errors="coerce") for name in DATE_FIELDS)
    return first.fillna(second).reset_index(drop=True)


def time_order(dates: pd.Series) -> np.ndarray:
    """Row positions oldest first (undated records first: they cannot be 'later')."""
    days = dates.to_numpy(dtype="datetime64[ns]").astype("int64")
    days = np.where(dates.isna().to_numpy(), np.iinfo("int64").min, days)
    return np.argsort(days, kind="stable")


def newest_cut(dates: pd.Series, order: np.ndarray, size: int) -> int:
    """Where to cut `order` so that about `size` newest rows are after the cut and no date
    is on both sides: every row after the cut is strictly newer than every row before."""
    ordered = dates.iloc[order].reset_index(drop=True)
    cut = len(order) - size
    while cut > 0 and ordered.iloc[cut - 1] == ordered.iloc[cut]:
        cut -= 1  # the whole first test day goes to the test side
    return cut


def window_bounds(dates, windows: int, span: float = SPAN) -> list[tuple[int, int]]:
    """(start, end) positions in time order (`time_order(dates)`) of each test window:
    consecutive, covering the newest `span` of the rows, never splitting a date."""
    ordered = dates.iloc[time_order(dates)].reset_index(drop=True)
    n = len(ordered)
    cuts = np.linspace(n - round(span * n), n, windows + 1).round().astype(int)
    bounds = []
    for cut in cuts[:-1]:
        while 0 < cut < n and ordered.iloc[cut - 1] == ordered.iloc[cut]:
            cut -= 1  # the whole day goes to the later window
        bounds.append(int(cut))
    bounds = sorted(set(bounds)) + [n]
    found = [(start, end) for start, end in zip(bounds, bounds[1:], strict=False) if start > 0]
    if len(found) < 2:
        raise DpeError(f"too few distinct dates among {n} records for a back-test")
    return found


def split_rows(
    X: pd.DataFrame, y: np.ndarray, dates: pd.Series, kind: str, test_size: float, seed: int
) -> Split:
    """Hold out `test_size` of the rows: the newest (`time`) or a stratified draw (`random`)."""
    if kind not in SPLITS:
        raise DpeError(f"unknown split {kind!r}: choose one of {', '.join(SPLITS)}")
    if kind == "random":
        return _random_split(X, y, dates, test_size, seed)
    order = time_order(dates)
    cut = newest_cut(dates, order, max(1, round(test_size * len(y))))
    if cut == 0:
        raise DpeError(
            f"cannot hold out the newest records: all {len(y)} share one date; use --split random"
        )
    return _take(kind, X, y, dates, order[:cut], order[cut:])


def _random_split(X, y, dates, test_size: float, seed: int) -> Split:
    rows = np.arange(len(y))
    try:
        train, test = train_test_split(rows, test_size=test_size, stratify=y, random_state=seed)
    except ValueError as error:  # a test split too small to hold every label
        raise DpeError(f"cannot split {len(y)} rows for testing: {error}") from error
    return _take("random", X, y, dates, train, test)


def _take(kind: str, X, y, dates, train: np.ndarray, test: np.ndarray) -> Split:
    def rows(positions):
        return X.iloc[positions].reset_index(drop=True)

    return Split(
        kind,
        rows(train),
        rows(test),
        np.asarray(y)[train],
        np.asarray(y)[test],
        dates.iloc[train].reset_index(drop=True),
        dates.iloc[test].reset_index(drop=True),
    )


def _day(value) -> str | None:
    return None if pd.isna(value) else pd.Timestamp(value).date().isoformat()
