"""The data gate on real ADEME records (the shared sample, newest half as increments against
the older half): clean increments of a judged size pass, poisoned labels do not (issue 24:
items 4 and 7). No MLflow: the gate reads data only."""

import numpy as np
import pandas as pd
import pytest

from core.data.schema import LABELS
from core.data.validation import clean
from core.lifecycle import data_gate
from core.modeling import scales
from core.modeling.splits import record_dates, time_order


@pytest.fixture(scope="module")
def records(sample_csv) -> pd.DataFrame:
    """The sample cleaned (as a dataset version's snapshot holds it), oldest first."""
    frame = clean(pd.read_csv(sample_csv, dtype=str, keep_default_na=False))
    return frame.iloc[time_order(record_dates(frame))].reset_index(drop=True)


def shifted(frame: pd.DataFrame) -> pd.DataFrame:
    """Every label one class worse (A→B … F→G), the consumption unchanged: the issue's
    label-flip increment."""
    flipped = frame.copy()
    labelled = flipped["etiquette_dpe"].isin(LABELS)
    flipped.loc[labelled, "etiquette_dpe"] = flipped.loc[labelled, "etiquette_dpe"].map(
        lambda label: LABELS[min(LABELS.index(label) + 1, len(LABELS) - 1)]
    )
    return flipped


def judged(settings, new: pd.DataFrame, before: pd.DataFrame) -> list[str]:
    return data_gate.reasons(settings, data_gate.measure(settings, new, before))


def test_clean_real_increments_pass_once_they_reach_the_minimum_size(settings, records):
    """Over random draws of the newest records: small ones would often be refused on
    chance alone (what `waiting` avoids); from DPE_GATE_MIN_ROWS on, almost never."""
    before, recent = records.iloc[: len(records) // 2], records.iloc[len(records) // 2 :]
    rng = np.random.default_rng(7)

    def refusal_rate(rows: int, draws: int) -> float:
        drawn = [recent.sample(rows, random_state=rng.integers(2**31)) for _ in range(draws)]
        return float(np.mean([bool(judged(settings, new, before)) for new in drawn]))

    assert refusal_rate(5, 100) > 0.2  # why increments below the minimum wait
    assert settings.gate_min_rows == 50
    assert refusal_rate(50, 100) <= 0.02
    assert refusal_rate(200, 30) == 0.0


def test_real_labels_follow_the_scales_and_flipped_ones_are_refused(settings, records):
    assert data_gate.off_scale(records).sum() / records["etiquette_dpe"].isin(LABELS).sum() < 0.01
    flipped = shifted(records)
    changed = flipped["etiquette_dpe"].fillna("") != records["etiquette_dpe"].fillna("")
    new = flipped[changed].reset_index(drop=True)
    measured = data_gate.measure(settings, new, records)
    assert measured["relabelled_share"] == 1.0  # every changed label, same consumption
    assert measured["off_scale_share"] > 0.5
    reasons = judged(settings, new, records)
    assert any("label changed while their consumption did not" in r for r in reasons), reasons
    assert any("class on none of the official scales" in r for r in reasons), reasons


def test_the_rule_baseline_collapsing_on_the_window_is_a_reason(settings, records):
    """New records labelled on a scale their sector does not use agree with *a* scale (the
    off-scale share cannot see it) but the rule baseline falls far below its back-test."""
    before = records.iloc[: int(len(records) * 0.7)]
    poisoned = records.copy()
    newest = poisoned.index[int(len(records) * 0.7) :]
    labelled = newest[poisoned.loc[newest, "etiquette_dpe"].isin(LABELS)]
    wrong_scale = scales.label_index(
        poisoned.loc[labelled, "conso_kwhep_m2_an"].to_numpy(), "occupation_continue"
    )
    poisoned.loc[labelled, "etiquette_dpe"] = [LABELS[int(i)] for i in wrong_scale]

    clean_check = data_gate.rules_drop(settings, records, before)
    assert data_gate.rules_reason(settings, clean_check) == [], clean_check
    found = data_gate.rules_drop(settings, poisoned, before)
    assert found["window"] < found["low"] - settings.gate_max_rules_drop, found
    [reason] = data_gate.rules_reason(settings, found)
    assert "far below its back-test range" in reason
    assert data_gate.off_scale(poisoned.loc[labelled]).mean() < 0.05  # only the baseline sees it


def test_a_field_emptied_upstream_is_flagged_only_when_chance_cannot_explain_it(settings, records):
    before, recent = records.iloc[:1500], records.iloc[1500:1560].copy()
    sparse = "type_energie_principale_chauffage"  # about 90 % empty in real records
    recent[sparse] = None
    assert data_gate.emptied_fields(recent, before) == []
    recent["annee_construction"] = None  # filled in most records: 60 empty ones is no chance
    assert data_gate.emptied_fields(recent, before) == ["annee_construction"]
