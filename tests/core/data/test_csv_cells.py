"""core.data.csv_cells: text a spreadsheet would run as a formula is neutralised (CSV injection),
in pandas and in DuckDB alike, and in the Explore page's export."""

import duckdb
import pandas as pd
import pytest

from core.config import Settings
from core.data.csv_cells import safe_cell, safe_sql, safe_text_columns
from core.data.ingest import ingest
from tooling.synth import generate_records
from ui import explore, explore_snapshot

CELLS = {
    "=1+2": "'=1+2",
    '=HYPERLINK("http://x","y")': '\'=HYPERLINK("http://x","y")',
    "+cmd": "'+cmd",
    "-2+3": "'-2+3",
    "@SUM(A1)": "'@SUM(A1)",
    "\tx": "'\tx",
    "\rx": "'\rx",
    "-": "'-",
    "-12": "-12",
    "+3,5": "+3,5",
    "-1.5e3": "-1.5e3",
    "plain = text": "plain = text",
    "": "",
}


@pytest.mark.parametrize(("cell", "expected"), CELLS.items())
def test_a_cell_and_its_sql_twin_agree(cell, expected):
    assert safe_cell(cell) == expected
    with duckdb.connect() as con:
        [(got,)] = con.execute(f"SELECT {safe_sql('$1::VARCHAR')}", [cell]).fetchall()
    assert got == expected


def test_only_text_columns_are_touched():
    frame = pd.DataFrame({"text": ["=1", None], "number": [-1.0, 2.0]})
    safe = safe_text_columns(frame, frame.columns)
    assert safe["text"].tolist()[0] == "'=1" and pd.isna(safe["text"][1])
    assert safe["number"].tolist() == [-1.0, 2.0] and frame["text"][0] == "=1"


def test_the_explore_export_neutralises_formulas(tmp_path):
    frame = generate_records(50, seed=4).astype(object)
    frame.loc[0, "Adresse_brute"] = '=HYPERLINK("http://evil","clic")'
    frame.loc[1, "Nom_résidence"] = "@cmd"
    frame.to_csv(tmp_path / "records.csv", index=False)
    settings = Settings(_env_file=None, home=tmp_path / "home")
    ingest(settings, source=tmp_path / "records.csv")
    data = explore.export_csv(settings, explore_snapshot.snapshot(settings), explore.Filters())
    exported = pd.read_csv(pd.io.common.BytesIO(data), dtype=str, keep_default_na=False)
    cells = set(exported["Adresse_brute"]) | set(exported["Nom_résidence"])
    assert {'\'=HYPERLINK("http://evil","clic")', "'@cmd"} <= cells
    assert not any(cell.startswith(("=", "@")) for cell in cells)
