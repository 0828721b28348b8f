"""The data gate: what a pass measures on its increment before anything trains on it.

The increment is what the dataset holds that the base version did not (new records, and
records whose cleaned content changed). Below `DPE_GATE_MIN_ROWS` records no share is
judged (a share of three records says little): the pass waits for more. Then, over a limit,
the increment is refused with its reasons:

- quality shares: rejected by validation (with the rows per rejection code), unlabelled,
  placeholders, categories never seen; a field that was filled and is empty in every new
  record, when that cannot be chance;
- labels against the official scales: by regulation the label is the consumption's class on
  one of four scales (more than 99 % of real records agree with one): a share of labels that
  agree with none over `DPE_GATE_MAX_OFF_SCALE_SHARE`; records whose label changed while
  their consumption did not, over `DPE_GATE_MAX_RELABELLED_SHARE`;
- the rule baseline on the pass's window, far below (`DPE_GATE_MAX_RULES_DROP`) the range
  of its back-test on the base version: the new labels no longer follow the scales.
"""

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score

from core.config import Settings
from core.data import quarantine, warehouse
from core.data.schema import LABELS, RECORD_FIELDS
from core.modeling import scales
from core.modeling.rules import RuleClassifier
from core.modeling.splits import record_dates, time_order

LABEL, CONSUMPTION = "etiquette_dpe", "conso_kwhep_m2_an"
# A field empty in every new record is flagged when chance would do that less often than this.
EMPTIED_BY_CHANCE = 0.001
BACKTEST_WINDOWS = 4
MIN_WINDOW_ROWS = 20  # fewer labelled records in a window: no rule-baseline verdict


def increment(
    settings: Settings, version: str, base: str | None
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The records `version` holds that `base` did not (new or changed), the base's
    records, and the whole of `version`."""
    _, frame = warehouse.load_dataset(settings, version)
    if base is None:
        return frame, frame.iloc[0:0], frame
    _, before = warehouse.load_dataset(settings, base)
    merged = frame.merge(before, how="left", indicator=True)
    new = frame[(merged["_merge"] == "left_only").to_numpy()].reset_index(drop=True)
    return new, before, frame


def counts(new: pd.DataFrame, before: pd.DataFrame) -> dict[str, int]:
    """Records added, updated (present before, with other content) and rejected."""
    updated = int(new["n_dpe"].isin(before["n_dpe"]).sum())
    return {
        "added": len(new) - updated,
        "updated": updated,
        "rejected": int(new["reject_reason"].notna().sum()),
    }


def off_scale(frame: pd.DataFrame) -> pd.Series:
    """Labelled records whose label is the consumption's class on none of the scales."""
    labelled = frame[LABEL].isin(LABELS) & frame[CONSUMPTION].notna()
    consumption = frame.loc[labelled, CONSUMPTION].to_numpy(dtype=float)
    label = frame.loc[labelled, LABEL].map(LABELS.index).to_numpy()
    agrees = np.zeros(len(label), dtype=bool)
    for family in scales.FAMILIES:
        agrees |= scales.label_index(consumption, family) == label
    found = pd.Series(False, index=frame.index)
    found[labelled] = ~agrees
    return found


def relabelled(new: pd.DataFrame, before: pd.DataFrame, judged: pd.Series) -> pd.Series:
    """Records of `new` whose label changed while their consumption did not (`judged`:
    which rows of `before` count; a refused content, still held, does not)."""
    old = before.loc[judged, ["n_dpe", LABEL, CONSUMPTION]].drop_duplicates("n_dpe")
    both = new[["n_dpe", LABEL, CONSUMPTION]].merge(
        old, on="n_dpe", how="left", suffixes=("", "_before")
    )
    was = both[f"{LABEL}_before"]
    same_consumption = (both[CONSUMPTION] == both[f"{CONSUMPTION}_before"]) | (
        both[CONSUMPTION].isna() & both[f"{CONSUMPTION}_before"].isna()
    )
    changed = was.notna() & (both[LABEL] != was) & same_consumption
    return pd.Series(changed.to_numpy(), index=new.index)


def emptied_fields(new: pd.DataFrame, before: pd.DataFrame) -> list[str]:
    """Record fields empty in every new record although the base filled them often enough
    that so many empty ones by chance is unlikely (< EMPTIED_BY_CHANCE)."""
    if before.empty:
        return []
    found = []
    for name in RECORD_FIELDS:
        filled = float(before[name].notna().mean())
        if new[name].isna().all() and (1 - filled) ** len(new) < EMPTIED_BY_CHANCE:
            found.append(name)
    return found


def measure(settings: Settings, new: pd.DataFrame, before: pd.DataFrame) -> dict:
    """The increment's shares the gate judges, and the fields it emptied."""
    unseen = pd.Series(False, index=new.index)
    if len(before):
        for name, spec in RECORD_FIELDS.items():
            if spec.kind == "category":
                unseen |= new[name].notna() & ~new[name].isin(before[name].dropna().unique())
    judged = ~quarantine.held_mask(settings, before) if len(before) else before["n_dpe"].notna()
    labelled = int(new[LABEL].isin(LABELS).sum())
    return {
        "rows": len(new),
        "rejected_share": float(new["reject_reason"].notna().mean()),
        "rejected_by_code": rejected_by_code(new),
        "unlabelled_share": float((~new[LABEL].isin(LABELS)).mean()),
        "placeholder_share": float((new["surface_placeholder"] | new["conso_placeholder"]).mean()),
        "new_category_share": float(unseen.mean()),
        "off_scale_share": float(off_scale(new).sum() / labelled) if labelled else 0.0,
        "relabelled_share": float(relabelled(new, before, judged).mean()),
        "missing_fields": emptied_fields(new, before),
    }


def rejected_by_code(frame: pd.DataFrame) -> dict[str, int]:
    """Rows per rejection code (a row counts once under each of its codes), most first;
    empty for a snapshot from before codes."""
    if "reject_code" not in frame:
        return {}
    codes = frame["reject_code"].dropna().str.split("|").map(set).explode()
    return {str(code): int(n) for code, n in codes.value_counts().items()}


LIMITS = {  # measure -> (what it counts, the setting of its limit)
    "rejected_share": ("records rejected by validation", "gate_max_rejected_share"),
    "unlabelled_share": ("records without a label A-G", "gate_max_unlabelled_share"),
    "placeholder_share": ("records holding a placeholder", "gate_max_placeholder_share"),
    "new_category_share": ("records with a category never seen", "gate_max_new_category_share"),
    "off_scale_share": (
        "labels that are the consumption's class on none of the official scales",
        "gate_max_off_scale_share",
    ),
    "relabelled_share": (
        "records whose label changed while their consumption did not",
        "gate_max_relabelled_share",
    ),
}


def reasons(settings: Settings, measured: dict) -> list[str]:
    """Why the increment is refused (empty when it passes)."""
    found = []
    for key, (what, setting) in LIMITS.items():
        limit = getattr(settings, setting)
        if measured.get(key, 0) > limit:
            found.append(f"{measured[key]:.0%} {what} (limit {limit:.0%}, DPE_{setting.upper()})")
    by_code = measured.get("rejected_by_code")
    if by_code and measured.get("rejected_share", 0) > settings.gate_max_rejected_share:
        # The first limit's reason: how many rows each code rejected.
        found[0] += ": " + ", ".join(f"{code} {n}" for code, n in by_code.items())
    if measured.get("missing_fields"):
        found.append(f"fields empty in every new record: {', '.join(measured['missing_fields'])}")
    return found


def rules_drop(settings: Settings, frame: pd.DataFrame, before: pd.DataFrame) -> dict | None:
    """The rule baseline's gate metric on the pass's window (the newest
    `pipeline_window_share` of `frame`'s labelled records) and its range over a back-test on
    `before` (BACKTEST_WINDOWS consecutive windows of its newest half, each scored by the
    rules fitted on what precedes it); None when there are too few records to say."""
    current = _labelled_in_time_order(quarantine.for_training(settings, frame))
    base = _labelled_in_time_order(quarantine.for_training(settings, before))
    size = round(len(current) * settings.pipeline_window_share)
    if size < MIN_WINDOW_ROWS or len(base) // 2 < BACKTEST_WINDOWS * MIN_WINDOW_ROWS:
        return None
    metric = settings.gate_metric
    window = _rules_score(current.iloc[:-size], current.iloc[-size:], metric)
    tested = np.array_split(np.arange(len(base) // 2, len(base)), BACKTEST_WINDOWS)
    backtest = [_rules_score(base.iloc[: rows[0]], base.iloc[rows], metric) for rows in tested]
    return {"metric": metric, "window": window, "low": min(backtest), "high": max(backtest)}


def _labelled_in_time_order(frame: pd.DataFrame) -> pd.DataFrame:
    rows = frame[frame["reject_reason"].isna() & frame[LABEL].isin(LABELS)]
    return rows.iloc[time_order(record_dates(rows))].reset_index(drop=True)


def _rules_score(older: pd.DataFrame, window: pd.DataFrame, metric: str) -> float:
    """The rule model (fitted on `older`: its fallback label) scored on `window`."""
    rules = RuleClassifier().fit(older, older[LABEL])
    truth, predicted = window[LABEL].to_numpy(), rules.predict(window)
    if metric == "accuracy":
        return float(accuracy_score(truth, predicted))
    if metric == "balanced_accuracy":
        return float(balanced_accuracy_score(truth, predicted))
    return float(f1_score(truth, predicted, average="macro", zero_division=0))


def rules_reason(settings: Settings, found: dict | None) -> list[str]:
    """Why the rule baseline's window score refuses the increment (empty when it does not)."""
    if found is None or found["window"] >= found["low"] - settings.gate_max_rules_drop:
        return []
    return [
        f"the rule baseline's {found['metric']} on the window is {found['window']:.3f}, far "
        f"below its back-test range on the data before ({found['low']:.3f} to "
        f"{found['high']:.3f}; more than {settings.gate_max_rules_drop:g} under, "
        "DPE_GATE_MAX_RULES_DROP): the new labels do not follow the official scales"
    ]
