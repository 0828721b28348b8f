"""The data gate: what a pass measures on its increment before anything trains on it.

The increment is what the dataset holds that the base version did not (new records, and
records whose cleaned content changed). Below `DPE_GATE_MIN_ROWS` records no share is
judged (a share of three records says little): the pass waits for more. Then, over a limit,
the increment is refused with its reasons:

- quality shares: rejected by validation, unlabelled, placeholders, categories never seen;
  a field that was filled and is empty in every new record, when that cannot be chance;
- labels against the official scales: by regulation the label is the consumption's class on
  one of four scales (more than 99 % of real records agree with one): a share of labels that
  agree with none over `DPE_GATE_MAX_OFF_SCALE_SHARE`; records whose label changed while
  their consumption did not, over `DPE_GATE_MAX_RELABELLED_SHARE`;
- the rule baseline on the pass's window, far below (`DPE_GATE_MAX_RULES_DROP`) the range
  of its back-test on the base version: the new labels no longer follow the scales.
"""

import logging

import numpy as np
import pandas as pd

from core.config import Settings
from core.data import quarantine, warehouse
from core.data.schema import LABELS, RECORD_FIELDS
from core.errors import DpeError
from core.modeling import scales

log = logging.getLogger(__name__)

LABEL, CONSUMPTION, SECTOR = "etiquette_dpe", "conso_kwhep_m2_an", "secteur_activite"
# A field empty in every new record is flagged when chance would do that less often than this.
EMPTIED_BY_CHANCE = 0.001
RULES_FEATURES = "with-consumption"  # the rule baseline reads the consumption and the sector


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
                known = set(before[name].dropna())
                unseen |= new[name].notna() & ~new[name].isin(known)
    judged = ~quarantine.held_mask(settings, before) if len(before) else before["n_dpe"].notna()
    labelled = int(new[LABEL].isin(LABELS).sum())
    return {
        "rows": len(new),
        "rejected_share": float(new["reject_reason"].notna().mean()),
        "unlabelled_share": float((~new[LABEL].isin(LABELS)).mean()),
        "placeholder_share": float((new["surface_placeholder"] | new["conso_placeholder"]).mean()),
        "new_category_share": float(unseen.mean()),
        "off_scale_share": float(off_scale(new).sum() / labelled) if labelled else 0.0,
        "relabelled_share": float(relabelled(new, before, judged).mean()),
        "missing_fields": emptied_fields(new, before),
    }


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
    if measured.get("missing_fields"):
        found.append(f"fields empty in every new record: {', '.join(measured['missing_fields'])}")
    return found


def rules_drop(settings: Settings, frame: pd.DataFrame, before: pd.DataFrame) -> dict | None:
    """The rule baseline's gate metric on the pass's window (the newest labelled records of
    `frame`) and its range over a back-test on `before`; None when either cannot be measured
    (too few labelled records or dates)."""
    from core.modeling.backtest import window_bounds
    from core.modeling.splits import time_order
    from core.modeling.train import SEED, held_out, labelled_dates, labelled_rows

    metric = settings.gate_metric
    try:
        held = held_out(
            quarantine.for_training(settings, frame),
            RULES_FEATURES,
            "time",
            settings.pipeline_window_share,
            SEED,
        )
        window = _rules_score(held.X_train, held.y_train, held.X_test, held.y_test, metric)
        before = quarantine.for_training(settings, before)
        X, y = labelled_rows(before, RULES_FEATURES)
        dates = labelled_dates(before)
        order = time_order(dates)
        backtest = [
            _rules_score(
                X.iloc[order[:start]],
                y[order[:start]],
                X.iloc[order[start:end]],
                y[order[start:end]],
                metric,
            )  # fmt: skip
            for start, end in window_bounds(dates, 4)
        ]
    except DpeError as error:
        log.info("rule baseline check skipped: %s", error)
        return None
    return {"metric": metric, "window": window, "low": min(backtest), "high": max(backtest)}


def _rules_score(X_train, y_train, X_test, y_test, metric: str) -> float:
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score

    from core.modeling.models import build_pipeline

    predicted = build_pipeline("rules", RULES_FEATURES).fit(X_train, y_train).predict(X_test)
    if metric == "accuracy":
        return float(accuracy_score(y_test, predicted))
    if metric == "balanced_accuracy":
        return float(balanced_accuracy_score(y_test, predicted))
    return float(f1_score(y_test, predicted, average="macro", zero_division=0))


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
