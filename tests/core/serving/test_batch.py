"""core.serving.batch: frames and CSV files through the champion, and `python -m core predict`."""

import io

import numpy as np
import pandas as pd
import pytest

from core.data.csv_source import read_csv
from core.data.schema import LABELS, RECORD_FIELDS, SNAKE_TO_OFFICIAL
from core.errors import DpeError
from core.serving import batch
from core.serving.batch import (
    PREDICTION_COLUMNS,
    model_fields,
    predict_csv,
    predict_frame,
    summary,
    to_csv_bytes,
)
from core.serving.champion import TOLERANCE
from tests.support.champion import (
    as_floats,
    probabilities,
)
from tests.support.cli import cli_env, run_cli

SECTOR = "W : Administrations, banques, bureaux"


# --- batches, CSV and the command line -------------------------------------------------------


def records_csv(records: list[dict], sep: str = ",", official: bool = False) -> pd.DataFrame:
    frame = pd.DataFrame(records, columns=list(RECORD_FIELDS))
    if official:
        frame = frame.rename(columns=SNAKE_TO_OFFICIAL)
    return frame


def test_predict_frame_keeps_every_row_and_matches_predict(champion, records):
    bad = [{"surface_utile": -3, "annee_construction": 1950.5}, {"conso_kwhep_m2_an": 2e6}]
    frame = records_csv(records[:50] + [{"secteur_activite": "Z : Zoo"}, {}] + bad)
    frame["extra"] = "kept"
    predicted = predict_frame(champion, frame)
    assert list(predicted.columns) == [*frame.columns, *PREDICTION_COLUMNS]
    assert len(predicted) == len(frame) and (predicted["extra"] == "kept").all()
    # "extra" is passed through in a file; a record's unknown key is warned of instead.
    results = champion.predict(frame.drop(columns="extra").to_dict("records"))
    assert predicted["warning"].iloc[50].startswith("Secteur_activité='Z : Zoo' is a category")
    for row, result in zip(predicted.itertuples(index=False), results, strict=True):
        assert (None if pd.isna(row.predicted_label) else row.predicted_label) == result["label"]
        assert (row.error or None) == result["error"]
        assert row.error_code == "|".join(problem["code"] for problem in result["errors"])
        assert row.warning == "; ".join(result["warnings"])
        if result["label"]:
            got = np.array([getattr(row, f"proba_{label}") for label in LABELS])
            assert np.abs(got - as_floats(result["probabilities"])).max() <= TOLERANCE
    assert predicted["error_code"].tolist()[-2:] == [
        "below_minimum|not_an_integer",
        "above_maximum",
    ]


def test_csv_round_trip_semicolon_cp1252_decimal_comma(champion, records, tmp_path):
    frame = records_csv(records[:30] + [{"conso_kwhep_m2_an": -1}], official=True)
    path = tmp_path / "input.csv"
    text = frame.to_csv(sep=";", index=False, decimal=",")
    path.write_bytes(text.encode("cp1252"))
    predicted = predict_frame(champion, read_csv(path))
    data = to_csv_bytes(predicted)
    back = pd.read_csv(pd.io.common.BytesIO(data), dtype=str, keep_default_na=False)
    assert back.columns[0] == frame.columns[0] and "predicted_label" in back
    assert back["error"].iloc[-1] == "Conso_kWhep/m²/an=-1 must be >= 0"
    assert (back["predicted_label"].iloc[:-1] != "").all()
    expected = probabilities(champion.predict(records[:30]))
    got = back[[f"proba_{label}" for label in LABELS]].iloc[:-1].astype(float).to_numpy()
    assert np.array_equal(got, expected)  # floats written in full


def test_predict_csv_writes_what_predict_frame_gives(champion, records, tmp_path):
    frame = records_csv(records[:40] + [{"surface_utile": 0}], official=True)
    frame.insert(0, "note, with a comma", "kept as it came")
    source = tmp_path / "in.csv"
    frame.to_csv(source, index=False)
    counts = predict_csv(champion, source, tmp_path / "out.csv")
    assert counts["rows"] == 41 and counts["predicted"] == 40 and counts["rejected"] == 1
    expected = to_csv_bytes(predict_frame(champion, read_csv(source)))
    assert (tmp_path / "out.csv").read_bytes() == expected
    # An output predicted again: its prediction columns are replaced, not repeated.
    predict_csv(champion, tmp_path / "out.csv", tmp_path / "again.csv")
    assert (tmp_path / "again.csv").read_bytes() == expected


def test_a_file_with_none_of_the_models_fields_is_refused_whole(champion, tmp_path):
    with pytest.raises(
        DpeError, match=r"none of the model's fields.*Surface_utile \(surface_utile\)"
    ):
        predict_csv(champion, b"foo;bar\n1;2\n3;4\n", tmp_path / "out.csv")
    with pytest.raises(DpeError, match="none of the model's fields"):
        predict_frame(champion, pd.DataFrame({"foo": [1]}))
    assert not (tmp_path / "out.csv").exists()


def test_missing_fields_and_agreement_with_the_files_label(champion, records, tmp_path):
    frame = pd.DataFrame(records[:60])[["secteur_activite", "conso_kwhep_m2_an"]]
    predicted = predict_frame(champion, frame)
    expected = [name for name in model_fields(champion) if name not in frame]
    assert summary(predicted)["missing_fields"] == expected and expected
    assert summary(predicted)["agreement"] is None
    labelled = frame.assign(Etiquette_DPE=list(predicted["predicted_label"][:30]) + ["G"] * 30)
    source = tmp_path / "labelled.csv"
    labelled.to_csv(source, index=False)
    counts = predict_csv(champion, source, tmp_path / "out.csv")
    same = 30 + int((predicted["predicted_label"][30:] == "G").sum())
    assert counts["agreement"] == {"share": round(same / 60, 4), "n": 60}
    assert counts["missing_fields"] == expected


def test_a_category_never_seen_is_predicted_with_a_warning(champion, records, tmp_path):
    source = tmp_path / "in.csv"
    records_csv([records[0] | {"secteur_activite": "OA : Nouveau secteur"}]).to_csv(
        source, index=False
    )
    counts = predict_csv(champion, source, tmp_path / "out.csv")
    assert counts["predicted"] == 1 and counts["warned"] == 1
    written = pd.read_csv(tmp_path / "out.csv", dtype=str, keep_default_na=False)
    assert written["predicted_label"][0] in LABELS and written["error"][0] == ""
    assert "'OA : Nouveau secteur' is a category the model never saw" in written["warning"][0]


def test_a_csv_is_read_in_blocks_and_gives_what_the_whole_frame_gives(
    champion, records, tmp_path, monkeypatch
):
    monkeypatch.setattr(batch, "CHUNK_VECTORS", 1)  # 2,048 rows a block
    rows = records * 2
    assert 2 * 2048 < len(rows) <= 3 * 2048
    source = tmp_path / "in.csv"
    records_csv(rows, official=True).to_csv(source, index=False)
    seen = []
    counts = predict_csv(
        champion, source, tmp_path / "out.csv", progress=lambda f, m: seen.append(f)
    )
    assert len(seen) == 3 and seen[-1] == 1.0
    whole = predict_frame(champion, read_csv(source))
    assert counts == summary(whole)
    assert (tmp_path / "out.csv").read_bytes() == to_csv_bytes(whole)


def test_a_malformed_row_past_the_first_blocks_names_its_line_and_leaves_no_output(
    champion, records, tmp_path, monkeypatch
):
    monkeypatch.setattr(batch, "CHUNK_VECTORS", 1)  # blocks are predicted and written before
    lines = records_csv(records * 2, official=True).to_csv(index=False).splitlines()
    broken = len(lines) - 10
    lines[broken] = lines[broken].replace(",", ',"', 1)  # a quote never closed
    source, target = tmp_path / "in.csv", tmp_path / "out.csv"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DpeError, match=rf"in.csv is not a readable CSV: line {broken + 1}: "):
        predict_csv(champion, source, target)
    assert not target.exists()


def test_an_answer_that_cannot_be_written_is_an_error_not_a_wait(champion, records, tmp_path):
    source = tmp_path / "in.csv"
    records_csv(records[:100], official=True).to_csv(source, index=False)
    with pytest.raises(Exception, match="missing"):
        predict_csv(champion, source, tmp_path / "missing" / "out.csv")


def test_text_cells_a_spreadsheet_would_run_are_neutralised(champion, records, tmp_path):
    notes = ['=HYPERLINK("http://x")', "+cmd", "-2+3", "@SUM(A1)", "\tx", "-12", "+3,5", "ok"]
    frame = records_csv(records[: len(notes)], official=True).assign(note=notes)
    source = tmp_path / "in.csv"
    frame.to_csv(source, index=False)
    expected = [
        '\'=HYPERLINK("http://x")',
        "'+cmd",
        "'-2+3",
        "'@SUM(A1)",
        "'\tx",
        "-12",
        "+3,5",
        "ok",
    ]
    predict_csv(champion, source, tmp_path / "out.csv")
    for data in ((tmp_path / "out.csv").read_bytes(), to_csv_bytes(predict_frame(champion, frame))):
        written = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)
        assert written["note"].tolist() == expected
        assert written["Surface_utile"].tolist() == frame["Surface_utile"].astype(str).tolist()


def test_column_names_a_spreadsheet_would_run_are_neutralised(champion, records, tmp_path):
    """Issue 24.16: a header `=HYPERLINK(...)` came back as it was."""
    header = '=HYPERLINK("http://evil/x")'
    frame = records_csv(records[:3], official=True).assign(**{header: "a", "-12": "b"})
    source = tmp_path / "in.csv"
    frame.to_csv(source, index=False)
    predict_csv(champion, source, tmp_path / "out.csv")
    for data in ((tmp_path / "out.csv").read_bytes(), to_csv_bytes(predict_frame(champion, frame))):
        columns = pd.read_csv(io.BytesIO(data), dtype=str, nrows=0).columns.tolist()
        assert "'" + header in columns and header not in columns
        assert "-12" in columns  # a number stays as it is
        assert columns[-len(PREDICTION_COLUMNS) :] == list(PREDICTION_COLUMNS)


def test_cli_predict(settings, champion, records, tmp_path):
    source = tmp_path / "in.csv"
    records_csv(records[:40] + [{"surface_utile": 0}], official=True).to_csv(source, index=False)
    output = tmp_path / "out" / "predicted.csv"
    code, payload, stderr = run_cli(
        "predict", "--input", str(source), "--output", str(output), env=cli_env(settings)
    )
    assert code == 0, stderr
    assert payload["rows"] == 41 and payload["predicted"] == 40 and payload["rejected"] == 1
    assert payload["model_version"] == "1"
    written = pd.read_csv(output, dtype=str, keep_default_na=False)
    assert written.loc[40, ["error", "error_code"]].tolist() == [
        "Surface_utile=0 must be > 0",
        "below_minimum",
    ]
    assert (written.loc[:39, ["error", "error_code"]] == "").all().all()
    expected = probabilities(champion.predict(records[:40]))
    got = written[[f"proba_{label}" for label in LABELS]].iloc[:40].astype(float).to_numpy()
    assert np.array_equal(got, expected)


def test_cli_without_champion_is_a_clear_error(settings, tmp_path):
    source = tmp_path / "in.csv"
    source.write_text("surface_utile\n100\n")
    code, payload, stderr = run_cli(
        "predict",
        "--input",
        str(source),
        "--output",
        str(tmp_path / "o.csv"),
        env=cli_env(settings),
    )
    assert code == 3 and payload["error"]["code"] == "not_found"  # nothing promoted yet
    assert "no champion model in" in payload["error"]["message"]
    assert "no champion model in" in stderr and "Traceback" not in stderr
