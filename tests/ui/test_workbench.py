"""ui.workbench: the small helpers behind the Predict and Batch pages."""

import pandas as pd

from core.data.schema import RECORD_FIELDS
from core.modeling import scales
from ui import workbench


def test_rejection_report_counts_each_rule_once_per_row():
    predicted = pd.DataFrame(
        {
            "N°DPE": ["a", "b", "c", "d"],
            "predicted_label": ["C", None, None, "D"],
            "error": [
                "",
                "Surface_utile=-3 must be > 0",
                "Surface_utile=-12 must be > 0; Secteur_activité='Z' is not a category the "
                "model knows (see the model's input_schema)",
                "",
            ],
        }
    )
    by_rule, rows = workbench.rejection_report(predicted)
    counts = dict(zip(by_rule["rule"], by_rule["rows"], strict=True))
    assert counts == {
        "Surface_utile must be > 0": 2,
        "Secteur_activité is not a category the model knows (see the model's input_schema)": 1,
    }
    assert by_rule["example"].iloc[0] == "Surface_utile=-3 must be > 0"
    assert rows["row"].tolist() == [2, 3] and rows["N°DPE"].tolist() == ["b", "c"]


def test_label_counts_keep_every_label():
    counts = workbench.label_counts(pd.DataFrame({"predicted_label": ["C", "C", None, "G"]}))
    assert counts["label"].tolist() == list("ABCDEFG")
    assert counts["records"].tolist() == [0, 0, 2, 0, 0, 0, 1]


def test_official_answer_and_distance_to_the_next_class():
    sector = "W : Administrations, banques, bureaux"  # bureaux: A ≤ 50, B ≤ 110, C ≤ 210...
    answer = workbench.official_answer(sector, 260.0)
    assert answer["family"] == scales.family_for_sector(sector)
    assert answer["label"] == "D" and answer["better_label"] == "C"
    assert answer["better_bound"] == 210 and answer["distance"] == 50.0
    best = workbench.official_answer(sector, 20.0)
    assert best["label"] == "A" and best["better_label"] is None and best["distance"] is None
    assert workbench.official_answer(sector, None) is None


def test_form_fields_from_an_input_schema():
    schema = [
        {
            "name": "secteur_activite",
            "type": "string",
            "categories": ["W : x"],
            "min": None,
            "max": None,
        },
        {
            "name": "surface_utile",
            "type": "number",
            "categories": None,
            "min": 0,
            "max": 1_000_000,
            "unit": "m²",
        },
        {
            "name": "annee_construction",
            "type": "number",
            "categories": None,
            "min": 1000,
            "max": 2030,
        },
    ]
    fields = {f["name"]: f for f in workbench.form_fields(schema)}
    assert fields["secteur_activite"]["choices"] == ["W : x"]
    assert fields["surface_utile"]["label"] == "Surface utile (m²)"
    assert fields["surface_utile"]["min_exclusive"] is True
    assert fields["annee_construction"]["kind"] == "integer"
    assert fields["annee_construction"]["official"] == RECORD_FIELDS["annee_construction"].official
