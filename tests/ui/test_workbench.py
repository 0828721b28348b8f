"""ui.workbench: the small helpers behind the Predict and Batch pages."""

import pandas as pd

from core.data.schema import RECORD_FIELDS
from core.data.validation import ERROR_CODES
from core.modeling import scales
from ui import workbench


def test_rejection_report_groups_by_code_not_by_text():
    """Messages holding `; ` or `=` in a value (which parsing the text back got wrong) are
    grouped by their codes; a row counts once under each of its codes."""
    predicted = pd.DataFrame(
        {
            "N°DPE": ["a", "b", "c", "d", "e"],
            "predicted_label": ["C", None, None, None, "D"],
            "error": [
                "",
                "Surface_utile=-12 must be > 0; Conso_kWhep/m²/an=-1 must be >= 0",
                "Surface_utile='a; b=c' is not a number",
                "Surface_utile=-3 must be > 0",
                "",
            ],
            "error_code": ["", "below_minimum|below_minimum", "not_a_number", "below_minimum", ""],
        }
    )
    by_code, rows = workbench.rejection_report(predicted)
    assert dict(zip(by_code["code"], by_code["rows"], strict=True)) == {
        "below_minimum": 2,
        "not_a_number": 1,
    }
    assert by_code["code"].tolist() == ["below_minimum", "not_a_number"]  # most rows first
    # The example is a row rejected for that problem alone when there is one.
    assert by_code["example"].tolist() == [
        "Surface_utile=-3 must be > 0",
        "Surface_utile='a; b=c' is not a number",
    ]
    assert by_code["meaning"].tolist() == [
        ERROR_CODES["below_minimum"],
        ERROR_CODES["not_a_number"],
    ]
    assert rows["row"].tolist() == [2, 3, 4] and rows["N°DPE"].tolist() == ["b", "c", "d"]
    assert rows["error_code"].tolist() == predicted["error_code"][1:4].tolist()


def test_rejection_report_of_a_batch_without_rejections_is_empty():
    by_code, rows = workbench.rejection_report(
        pd.DataFrame({"predicted_label": ["C"], "error": [""], "error_code": [""]})
    )
    assert by_code.empty and rows.empty


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
