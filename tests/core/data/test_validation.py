"""core.data.validation: one rule set, two compilations (SQL for bulk data, numpy for records)
that give the same message and the same code for the same value."""

import numpy as np
import pandas as pd
import pytest

from core.data.schema import RECORD_FIELDS
from core.data.validation import (
    ERROR_CODES,
    RowErrors,
    add_number_errors,
    clean,
    number_text,
    parse_numbers,
    spec_checks,
    trimmed,
)

NUMBER_FIELDS = [name for name, spec in RECORD_FIELDS.items() if spec.kind != "category"]
# Bad, borderline and odd values, as text a CSV or a JSON record may carry.
VALUES = [
    "abc", "-3", "0", "-0", "1", "1e20", "1950.5", "2031", "999", "0.5", "3.5", "NaN", "nan",
    "inf", "-inf", "Infinity", "1,5", " 12 ", "\t7\t", "1_000", "١٢", "", "\t", "2.5e-300",
    "1e15", "999999999999999.5", "0x10", "5e", "+5", "1000001", "10000000001", None,
]  # fmt: skip


def _numpy_errors(name: str, values: list) -> RowErrors:
    """What a record gets (Champion.predict's path): text trimmed, parsed, checked."""
    column = np.array([trimmed(v) for v in values], dtype=object)
    floats, not_number = parse_numbers(column)
    errors = RowErrors(len(values))
    add_number_errors(errors, name, column, floats, not_number, spec_checks(name))
    return errors


def _numpy_messages(name: str, values: list) -> list:
    return _numpy_errors(name, values).messages().tolist()


def _missing(values) -> list:
    return [None if pd.isna(value) else value for value in values]


@pytest.mark.parametrize("name", NUMBER_FIELDS)
def test_sql_and_numpy_give_the_same_message_and_code_for_every_value(name):
    official = RECORD_FIELDS[name].official
    frame = pd.DataFrame({official: pd.Series(VALUES, dtype=object)})
    cleaned = clean(frame, by_field=True)
    errors = _numpy_errors(name, VALUES)
    assert _missing(cleaned["reject_reason"]) == errors.messages().tolist()
    assert _missing(cleaned["reject_code"]) == errors.codes().tolist()
    # The bulk path's problem of the field, as data: the same as the record's.
    found = RowErrors(len(VALUES))
    found.add_found(
        name,
        cleaned[f"_code_{name}"].to_numpy(dtype=object),
        cleaned[f"_reason_{name}"].to_numpy(dtype=object),
    )
    assert found.rows == errors.rows
    assert any(m is not None for m in errors.messages())  # the values do break rules
    assert {p["code"] for ps in errors.rows.values() for p in ps} <= set(ERROR_CODES)


def test_each_problem_is_data_with_its_field_and_code():
    errors = _numpy_errors("annee_construction", ["1950.5", "999", "abc", "2031", "1990"])
    assert [errors.rows.get(row) for row in range(5)] == [
        [{"field": "annee_construction", "code": "not_an_integer",
          "message": "Année_construction=1950.5 is not an integer"}],
        [{"field": "annee_construction", "code": "below_minimum",
          "message": "Année_construction=999 must be >= 1000"}],
        [{"field": "annee_construction", "code": "not_a_number",
          "message": "Année_construction='abc' is not a number"}],
        [{"field": "annee_construction", "code": "above_maximum",
          "message": "Année_construction=2031 must be <= 2030"}],
        None,
    ]  # fmt: skip


def test_a_row_joins_its_messages_and_codes_in_the_same_order():
    frame = pd.DataFrame(
        {
            "Etiquette_DPE": ["H", "B"],
            "Surface_utile": ["0", "a; b|c"],  # separators inside a value stay in its message
            "Année_construction": ["1950.5", "1990"],
        }
    )
    cleaned = clean(frame)
    assert cleaned["reject_reason"].tolist() == [
        "Etiquette_DPE='H' is not a class A–G; Surface_utile=0 must be > 0; "
        "Année_construction=1950.5 is not an integer",
        "Surface_utile='a; b|c' is not a number",
    ]
    assert cleaned["reject_code"].tolist() == [
        "not_a_label|below_minimum|not_an_integer",
        "not_a_number",
    ]


def test_messages_read_as_before():
    messages = dict(zip(VALUES, _numpy_messages("surface_utile", VALUES), strict=True))
    assert messages["-3"] == "Surface_utile=-3 must be > 0"
    assert messages["abc"] == "Surface_utile='abc' is not a number"
    assert messages["1e20"] == "Surface_utile=1e+20 must be <= 1000000"
    assert messages["1,5"] is None and messages[" 12 "] is None
    year = _numpy_messages("annee_construction", ["1950.5", "999"])
    assert year == [
        "Année_construction=1950.5 is not an integer",
        "Année_construction=999 must be >= 1000",
    ]


def test_nan_is_missing_and_blanks_are_trimmed_in_csv_and_json_alike():
    """NaN was missing in JSON but "must be <= ..." in a CSV; a tab-padded category was
    taken in JSON and not in a CSV."""
    sector = "W : Administrations, banques, bureaux"
    frame = pd.DataFrame(
        {
            "Surface_utile": ["NaN", "nan", "\t250\t", " "],
            "Secteur_activité": [f"\t{sector} ", "\t", sector, None],
        }
    )
    cleaned = clean(frame)
    assert cleaned["reject_reason"].isna().all()
    assert cleaned["surface_utile"].isna().tolist() == [True, True, False, True]
    assert cleaned["secteur_activite"].tolist()[0] == sector
    assert pd.isna(cleaned["secteur_activite"].iloc[1])
    assert _numpy_messages("surface_utile", ["NaN", float("nan"), "\t250\t", " "]) == [None] * 4
    assert [trimmed(v) for v in (f"\t{sector} ", "\t", None)] == [sector, None, None]


def test_number_text_is_the_one_formatter():
    assert [number_text(v) for v in (100.0, -3, 1.5, 1e20, 1e15, -0.0)] == [
        "100", "-3", "1.5", "1e+20", "1000000000000000.0", "0",
    ]  # fmt: skip


def test_dates_in_the_future_are_rejected_beyond_a_small_tolerance():
    """A reception date of 2099 would stall the lifecycle's watermark (issue 24, item 5)."""
    today = pd.Timestamp.now(tz="UTC").normalize()
    soon = (today + pd.Timedelta(days=1)).strftime("%Y-%m-%d")  # clocks and time zones
    frame = pd.DataFrame(
        {
            "Date_réception_DPE": ["2099-12-31", soon, "2024-03-01", "2024-03-01"],
            "Date_visite_diagnostiqueur": [None, None, "31/12/2098", None],
            "Date_fin_validité_DPE": ["2034-03-01"] * 4,  # a validity end is in the future
        }
    )
    reasons = clean(frame)["reject_reason"]
    assert [None if pd.isna(reason) else reason for reason in reasons] == [
        "Date_réception_DPE=2099-12-31 is in the future",
        None,
        "Date_visite_diagnostiqueur=2098-12-31 is in the future",
        None,
    ]


def test_clean_gives_a_big_frames_rows_in_their_order():
    """DuckDB scans a DataFrame 122,880 rows per thread: each cleaned row stays at its place."""
    n = 130_000
    labels = np.array(list("ABCDEFGX"))[np.arange(n) % 8]  # X: not a class, rejected
    frame = pd.DataFrame({"N°DPE": [f"K{i}" for i in range(n)], "Etiquette_DPE": labels})
    cleaned = clean(frame)
    assert cleaned["n_dpe"].tolist() == frame["N°DPE"].tolist()
    assert cleaned["reject_reason"].notna().tolist() == (labels == "X").tolist()
