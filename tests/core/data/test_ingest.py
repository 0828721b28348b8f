"""Ingest: sources, cleaning, upserts, dataset versions, bad sources, the API client, the CLI."""

import errno
import io
import json
import re
import subprocess
import sys
import time
import zipfile

import duckdb
import httpx
import pandas as pd
import pytest

from core.data import ademe_api, warehouse
from core.data.csv_source import csv_table, read_csv
from core.data.ingest import ingest
from core.data.ingest import preview as ingest_preview
from core.data.validation import clean
from core.errors import DpeError, InvalidInput, Unavailable
from core.storage import Store
from tests.support.cli import ROOT, cli_env, run_cli
from tests.support.sources import (
    page_server,
    read_pages,
    records,
    reencode,
    sample_records,
    state,
    utf8_export_with_a_bad_byte,
    write_csv,
    write_pages,
)

COUNT_KEYS = {"dataset_version", "rows", "labelled", "duplicates", "rejected"}


@pytest.fixture
def fast_http(settings):
    """Settings whose API retries do not wait."""
    return settings.model_copy(update={"http_backoff_s": 0.01, "http_retries": 2})


@pytest.fixture
def sample_csv_file(tmp_path):
    return write_csv(sample_records(), tmp_path / "sample.csv")


def table(settings, query: str) -> list[tuple]:
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as con:
        return con.execute(query).fetchall()


# --- Cleaning ---------------------------------------------------------------------------


def test_clean_types_flags_and_reasons():
    cleaned = clean(sample_records()).set_index("n_dpe")
    assert cleaned.loc["T1", "surface_utile"] == 250.0
    assert cleaned.loc["T1", "conso_kwhep_m2_an"] == 180.5
    assert cleaned.loc["T3", "annee_construction"] == 1975
    assert cleaned.loc["T1", "code_postal_ban"] == "01170"  # codes stay text
    assert str(cleaned.loc["T1", "date_reception_dpe"].date()) == "2022-05-31"
    assert cleaned.loc["T2", ["surface_placeholder", "conso_placeholder"]].tolist() == [True, True]
    assert cleaned.loc["T1", ["surface_placeholder", "conso_placeholder"]].tolist() == [
        False,
        False,
    ]
    assert cleaned["reject_reason"].fillna("").to_dict() == {
        "T1": "",
        "T2": "",
        "T3": "",
        "T4": "Etiquette_DPE='I' is not a class A–G",
        "T5": "Surface_utile=-3 must be > 0",
        "T6": "Surface_utile='abc' is not a number",
    }


def test_clean_checks_every_bound_and_joins_reasons():
    frame = pd.DataFrame(
        {
            "annee_construction": ["1950.5", "999", "2031", "1990"],
            "conso_kwhep_m2_an": ["-1", "2000000", "5", "5"],
            "version_dpe": ["2", "2", "0.5", "2"],
        }
    )
    assert clean(frame)["reject_reason"].tolist()[:3] == [
        "Année_construction=1950.5 is not an integer; Conso_kWhep/m²/an=-1 must be >= 0",
        "Année_construction=999 must be >= 1000; Conso_kWhep/m²/an=2000000 must be <= 1000000",
        "Version_DPE=0.5 must be >= 1; Année_construction=2031 must be <= 2030",
    ]
    assert pd.isna(clean(frame)["reject_reason"].iloc[3])


def test_clean_accepts_snake_case_typed_values_and_keeps_the_index():
    frame = pd.DataFrame(
        {
            "surface_utile": [100.0, None],
            "Secteur_activité": ["Z : a sector nobody listed", None],  # open vocabulary
            "not_a_column": [1, 2],
        },
        index=[7, 9],
    )
    cleaned = clean(frame)
    assert list(cleaned.index) == [7, 9]
    assert cleaned["surface_placeholder"].tolist() == [True, False]
    assert cleaned["secteur_activite"].iloc[0] == "Z : a sector nobody listed"
    assert cleaned["reject_reason"].isna().all()
    assert "not_a_column" not in cleaned.columns
    assert len(cleaned.columns) == 67  # 63 fields, reject_reason and _code, 2 flags


def test_read_csv_reads_french_excel_exports():
    data = "n_dpe;Surface_utile;Nom__commune_(BAN)\nX1;12,5;Saint-Étienne\n".encode("cp1252")
    frame = read_csv(data)
    assert frame.to_dict("records") == [
        {"n_dpe": "X1", "Surface_utile": "12,5", "Nom__commune_(BAN)": "Saint-Étienne"}
    ]
    assert clean(frame)["surface_utile"].tolist() == [12.5]


@pytest.mark.parametrize(
    "source, message",
    [
        ("/no/such.csv", "source /no/such.csv does not exist"),
        (b"", "source uploaded CSV is empty"),
        # Issue 23.13: say what the file is.
        (b"\x89PNG\r\n\x1a\n\x00\x00", "source uploaded CSV is a .png file (image/png), not a"),
        (b"\x00\x01\x02\x03 garbage", "source uploaded CSV is a binary file, not a"),
        # Past the head that is sniffed: the whole file is checked.
        (
            b"a,b\n" + b"1,2\n" * 50_000 + b"\x00,1\n",
            "a binary file, not a CSV: a NUL byte at byte 200004",
        ),
        (b"\x81\x8d;x\n", "uploaded CSV is neither UTF-8 nor cp1252 text"),
        (b"a,a\n1,2\n", "uploaded CSV: a column name appears twice"),
    ],
)
def test_read_csv_refuses_what_is_not_a_csv(source, message):
    with pytest.raises(DpeError, match=re.escape(message)):
        read_csv(source)


def test_a_bad_byte_late_in_a_utf8_file_is_refused_naming_its_line(settings, tmp_path):
    """Issue 24.17: one byte at line 2,151 made the whole file read as cp1252, every accented
    text garbled (1,217 of 2,200 labels changed; ingest found no N°DPE column)."""
    source = utf8_export_with_a_bad_byte(tmp_path / "export.csv")
    message = "is UTF-8 text but line 2151 holds a byte that is not \\(0xFF\\)"
    with pytest.raises(DpeError, match=message):
        read_csv(source)
    with pytest.raises(DpeError, match=message):
        ingest(settings, source)
    assert not settings.duckdb_path.exists() or not table(settings, "SELECT * FROM ingests")


def test_cp1252_is_decided_on_the_whole_file_and_undefined_bytes_named():
    # cp1252 throughout (a few byte pairs that happen to be UTF-8 do not make it UTF-8).
    text = "n_dpe;Nom__commune_(BAN)\n" + "X;Saint-Étienne\n" * 50 + "Y;Ã©\n"
    assert read_csv(text.encode("cp1252"))["Nom__commune_(BAN)"].iloc[0] == "Saint-Étienne"
    with pytest.raises(DpeError, match="neither UTF-8 nor cp1252 text: line 3 holds byte 0x81"):
        read_csv("a;b\nX;é\nY;\x81\n".encode("latin-1"))


def test_a_spreadsheet_given_as_a_csv_is_named_with_what_to_do(tmp_path):
    """Issue 23.13: an Excel workbook renamed .csv."""
    workbook = io.BytesIO()
    with zipfile.ZipFile(workbook, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.xml", "<workbook/>")
    with pytest.raises(DpeError) as refused:
        read_csv(workbook.getvalue(), name="buildings.csv")
    assert str(refused.value) == (
        "source buildings.csv is a .xlsx file "
        "(application/vnd.openxmlformats-officedocument.spreadsheetml.sheet), not a CSV or JSON "
        "file: save it as CSV from the spreadsheet first"
    )


def test_read_csv_names_the_line_at_fault():
    with pytest.raises(DpeError, match="upload.csv is not a readable CSV: line 3: a quote"):
        read_csv(b'N\xc2\xb0DPE,x\nA,1\nB,"2\n', name="upload.csv")


# --- Ingest -----------------------------------------------------------------------------


def test_ingest_csv_counts_and_tables(settings, sample_csv_file):
    result = ingest(settings, sample_csv_file)
    assert result.keys() >= COUNT_KEYS
    assert {k: result[k] for k in ("rows", "labelled", "duplicates", "rejected")} == {
        "rows": 6,
        "labelled": 4,  # T4's 'I' is no label
        "duplicates": 0,
        "rejected": 3,
    }
    assert result["added"] == 6
    # Raw records are kept as the source wrote them, cleaned ones typed.
    raw = dict(table(settings, 'SELECT "N°DPE", "Surface_utile" FROM raw_dpe'))
    assert raw == {
        "T1": "250.0",
        "T2": "100.0",
        "T3": "1234.5",
        "T4": "80",
        "T5": "-3",
        "T6": "abc",
    }
    assert table(settings, "SELECT count(*) FROM dpe WHERE reject_reason IS NULL") == [(3,)]
    snapshot = settings.home / "store" / "datasets" / f"{result['dataset_version']}.parquet"
    assert len(pd.read_parquet(snapshot)) == 6


def test_rejected_records_keep_their_reason_and_gain_its_code(settings, sample_csv_file):
    ingest(settings, sample_csv_file)
    assert table(
        settings,
        "SELECT n_dpe, reject_reason, reject_code FROM dpe WHERE reject_reason IS NOT NULL "
        "ORDER BY n_dpe",
    ) == [
        ("T4", "Etiquette_DPE='I' is not a class A–G", "not_a_label"),
        ("T5", "Surface_utile=-3 must be > 0", "below_minimum"),
        ("T6", "Surface_utile='abc' is not a number", "not_a_number"),
    ]
    # The row digest is the one from before codes (the cleaned row without them): an
    # unchanged source keeps its records and its dataset version.
    [(same,)] = table(
        settings,
        "SELECT bool_and(hash(c) = d.row_hash) FROM dpe d, "
        "LATERAL (SELECT d.* EXCLUDE (reject_code, row_hash)) c",
    )
    assert same


def test_a_database_from_before_codes_gets_them_and_keeps_its_version(settings, sample_csv_file):
    first = ingest(settings, sample_csv_file)
    with duckdb.connect(str(settings.duckdb_path)) as con:
        con.execute("ALTER TABLE dpe DROP COLUMN reject_code")
    assert warehouse.describe(settings)["rejected_by_code"] == {}  # none to show, no error
    again = ingest(settings, sample_csv_file)
    assert (again["dataset_version"], again["unchanged"]) == (first["dataset_version"], 6)
    assert warehouse.describe(settings)["rejected_by_code"] == {
        "below_minimum": 1,
        "not_a_label": 1,
        "not_a_number": 1,
    }


def test_same_records_same_version_whatever_the_format(settings, tmp_path):
    frame = sample_records()
    csv_path = write_csv(frame, tmp_path / "a.csv")
    versions = {
        "csv": ingest(settings, csv_path)["dataset_version"],
        "cp1252": ingest(settings, reencode(csv_path, tmp_path / "b.csv"))["dataset_version"],
        "pages": ingest(settings, write_pages(frame, tmp_path / "p", 4))["dataset_version"],
    }
    fresh = settings.model_copy(update={"home": tmp_path / "fresh"})
    shuffled = write_csv(frame.iloc[::-1], tmp_path / "reversed.csv")
    versions["fresh, reversed"] = ingest(fresh, shuffled)["dataset_version"]
    assert len(set(versions.values())) == 1, versions
    assert table(settings, "SELECT count(*) FROM dataset_versions") == [(1,)]


def test_generated_records_same_version_from_csv_pages_and_cp1252(settings, tmp_path):
    synth = pytest.importorskip("tooling.synth")
    frame = synth.generate_records(400, seed=7)
    csv_path = tmp_path / "gen.csv"
    synth.write_csv(csv_path, 400, seed=7)
    pages = tmp_path / "pages"
    pages.mkdir()
    for number, page in enumerate(synth.to_api_pages(frame, 150)):
        (pages / f"p{number}.json").write_text(json.dumps(page, ensure_ascii=False))
    first = ingest(settings, csv_path)
    assert first["rows"] == 400
    for source in (pages, reencode(csv_path, tmp_path / "cp.csv")):
        again = ingest(settings, source)
        assert again["dataset_version"] == first["dataset_version"]
        assert (again["added"], again["updated"]) == (0, 0)


def test_duplicates_keep_the_last_occurrence(settings, tmp_path):
    frame = records(
        [
            {"N°DPE": "D1", "Etiquette_DPE": "C", "Surface_utile": "10"},
            {"N°DPE": "D2", "Surface_utile": "20"},
            {"N°DPE": " D1 ", "Etiquette_DPE": "B", "Surface_utile": "11"},  # stray blanks
            {"N°DPE": None, "Surface_utile": "30"},
        ]
    )
    result = ingest(settings, write_csv(frame, tmp_path / "d.csv"))
    assert (result["rows"], result["duplicates"], result["without_id"]) == (2, 1, 1)
    assert table(settings, "SELECT n_dpe, etiquette_dpe FROM dpe ORDER BY 1") == [
        ("D1", "B"),
        ("D2", None),
    ]


def test_a_file_read_by_several_threads_keeps_the_last_occurrence_and_a_key_order(
    settings, tmp_path
):
    """A first ingest reads a whole file without keeping its row order (on every core):
    a repeated N°DPE still keeps the record that came last, and the snapshot is written in
    key order (the file's is the reverse). The file is larger than DuckDB's 32 MB read
    buffer, so several threads read it."""
    rows = 60_000
    path = tmp_path / "large.csv"
    with path.open("w", encoding="utf-8") as out:
        out.write("N°DPE,Etiquette_DPE,Adresse_brute\n")
        out.write(f"D00000,G,{'x' * 600}\n")  # the last record's key, first seen
        for number in reversed(range(rows)):
            out.write(f"D{number:05},{'ABCDEFG'[number % 7]},{'y' * 600}\n")
    assert path.stat().st_size > 32 * 2**20
    result = ingest(settings, path)
    assert (result["rows"], result["duplicates"]) == (rows, 1)
    query = "SELECT etiquette_dpe, adresse_brute FROM dpe WHERE n_dpe = 'D00000'"
    [(label, address)] = table(settings, query)
    assert (label, address[0]) == ("A", "y")
    _, frame = warehouse.load_dataset(settings)
    assert frame["n_dpe"].is_monotonic_increasing and len(frame) == rows


def test_reingest_adds_nothing_then_upserts_changes(settings, tmp_path, sample_csv_file):
    first = ingest(settings, sample_csv_file)
    again = ingest(settings, sample_csv_file)
    assert again["dataset_version"] == first["dataset_version"]
    assert (again["added"], again["updated"]) == (0, 0)

    frame = sample_records()
    frame.loc[frame["N°DPE"] == "T5", "Surface_utile"] = "30"  # fixed at the source
    frame = pd.concat([frame, records([{"N°DPE": "T7", "Etiquette_DPE": "E"}])])
    changed = ingest(settings, write_csv(frame, tmp_path / "v2.csv"))
    assert (changed["added"], changed["updated"], changed["rejected"]) == (1, 1, 2)
    assert changed["dataset_version"] != first["dataset_version"]
    assert table(settings, "SELECT count(*) FROM raw_dpe") == [(7,)]
    assert table(settings, "SELECT surface_utile FROM dpe WHERE n_dpe = 'T5'") == [(30.0,)]
    # A subset re-ingested later changes nothing: records are never deleted by an ingest.
    subset = ingest(settings, write_csv(frame.head(2), tmp_path / "v3.csv"))
    assert subset["dataset_version"] == changed["dataset_version"]
    assert warehouse.current_version(settings) == changed["dataset_version"]


def test_limit_caps_a_file_source(settings, sample_csv_file):
    assert ingest(settings, sample_csv_file, limit=2)["rows"] == 2


# --- Bad sources leave everything as it was ---------------------------------------------


def _bad_sources(tmp_path) -> dict:
    (tmp_path / "empty.csv").write_bytes(b"")
    write_csv(sample_records().drop(columns=["N°DPE"]), tmp_path / "no_id.csv")
    (tmp_path / "truncated.json").write_text(json.dumps(sample_records().to_dict("records"))[:300])
    (tmp_path / "garbage.bin").write_bytes(bytes(range(256)) * 8)
    text = write_csv(sample_records(), tmp_path / "ok.csv").read_text()
    (tmp_path / "ragged.csv").write_text(text + "T9,only,three\n")
    (tmp_path / "header_only.csv").write_text(text.splitlines()[0] + "\n")
    return {
        "missing file": (tmp_path / "nope.csv", "does not exist"),
        "empty file": (tmp_path / "empty.csv", "is empty"),
        "CSV without N°DPE": (tmp_path / "no_id.csv", "has no N°DPE column"),
        "truncated JSON page": (tmp_path / "truncated.json", "is not valid JSON"),
        "binary garbage": (tmp_path / "garbage.bin", "is a binary file"),
        "ragged CSV": (tmp_path / "ragged.csv", r"fewer fields \(3\) than the header \(63\)"),
        "no records": (tmp_path / "header_only.csv", "holds no record after its header"),
    }


@pytest.mark.parametrize("existing", [False, True], ids=["fresh", "existing database"])
def test_bad_sources_change_nothing(settings, tmp_path, sample_csv_file, existing):
    if existing:
        ingest(settings, sample_csv_file)
    before = state(settings)
    for name, (source, message) in _bad_sources(tmp_path).items():
        with pytest.raises(DpeError, match=message) as error:
            ingest(settings, source)
        assert "\n" not in str(error.value), name
        assert state(settings) == before, name
    assert settings.duckdb_path.exists() == existing


def test_failure_after_writing_rolls_everything_back(settings, sample_csv_file, monkeypatch):
    """A failure as late as the snapshot upload leaves the database as it was."""
    ingest(settings, sample_csv_file)
    before = state(settings)
    frame = pd.concat([sample_records(), records([{"N°DPE": "T8"}])])
    write_csv(frame, sample_csv_file)

    def store_down(self, local, path):
        raise DpeError("object store file:///x unreachable: disk on fire")

    monkeypatch.setattr("core.storage.Store.put_file", store_down)
    with pytest.raises(DpeError, match="unreachable"):
        ingest(settings, sample_csv_file)
    assert state(settings) == before


# --- The ADEME API ----------------------------------------------------------------------


def test_api_follows_next_pages_through_429_and_500(fast_http, tmp_path):
    frame = sample_records()
    pages = read_pages(write_pages(frame, tmp_path / "p", 2))  # 3 pages, overlapping
    with page_server(pages, failures={1: 429, 2: 500}) as server:
        result = ingest(fast_http, server.url)
    assert [path.split("?")[1] for path in server.requests] == [
        "size=1000",
        "page=1",
        "page=1",  # after the 429
        "page=2",
        "page=2",  # after the 500
    ]
    assert (result["rows"], result["duplicates"]) == (6, 2)
    csv_version = ingest(fast_http, write_csv(frame, tmp_path / "f.csv"))
    assert csv_version["dataset_version"] == result["dataset_version"]


def test_api_limit_stops_paging(fast_http, tmp_path):
    pages = read_pages(write_pages(sample_records(), tmp_path / "p", 2))
    with page_server(pages) as server:
        result = ingest(fast_http, server.url, limit=3)
    assert len(server.requests) == 2
    assert result["rows"] + result["duplicates"] == 3


def test_api_errors_are_one_line_of_their_kind_and_change_nothing(fast_http, tmp_path):
    """A wrong URL (404) is the source's to fix; a server that keeps failing or does not
    answer may work later: Unavailable, the kind a scheduler retries."""
    pages = read_pages(write_pages(sample_records(), tmp_path / "p", 2))
    not_found = pytest.raises(InvalidInput, match="answered HTTP 404")
    with page_server(pages, failures={0: 404}) as server, not_found:
        ingest(fast_http, server.url)
    no_retry = fast_http.model_copy(update={"http_retries": 0})
    unavailable = pytest.raises(Unavailable, match=r"answered HTTP 503 \(1 attempt\)")
    with page_server(pages, failures={0: 503}) as server, unavailable:
        ingest(no_retry, server.url)
    with page_server(pages) as server:
        closed = server.url
    with pytest.raises(Unavailable, match=r"unreachable: .*\(3 attempts\)") as error:
        ingest(fast_http, closed)
    assert "\n" not in str(error.value)
    assert not fast_http.duckdb_path.exists()


# --- CLI --------------------------------------------------------------------------------


def test_cli_ingest_prints_one_json_object(settings, sample_csv_file):
    code, payload, stderr = run_cli(
        "ingest", "--source", str(sample_csv_file), env=cli_env(settings)
    )
    assert code == 0, stderr
    assert payload.keys() >= COUNT_KEYS and payload["rows"] == 6


def test_cli_ingest_bad_source_exits_non_zero_with_one_line(settings, tmp_path):
    (tmp_path / "empty.csv").write_bytes(b"")
    code, payload, stderr = run_cli(
        "ingest", "--source", str(tmp_path / "empty.csv"), env=cli_env(settings)
    )
    message = f"source {tmp_path / 'empty.csv'} is empty"
    assert code == 2
    assert payload == {"error": {"code": "invalid_input", "message": message, "retryable": False}}
    assert stderr.strip().splitlines() == [f"error: {message}"]


def test_cli_ingest_api_unreachable_is_worth_retrying(settings, tmp_path):
    """Exit 5 and `retryable`: what the Airflow DAG retries on."""
    pages = read_pages(write_pages(sample_records(), tmp_path / "p", 6))
    with page_server(pages) as server:
        closed = server.url
    env = {**cli_env(settings), "DPE_HTTP_RETRIES": "1", "DPE_HTTP_BACKOFF_S": "0.01"}
    code, payload, stderr = run_cli("ingest", "--source", closed, env=env)
    assert code == 5  # unavailable: trying again later may work
    assert payload["error"]["code"] == "unavailable" and payload["error"]["retryable"]
    assert "error: ADEME API" in stderr and "unreachable" in stderr
    assert not settings.duckdb_path.exists()


# --- Hardening: malformed rows, separators, offline, leftovers, progress, preview ----------


def _malformed_samples(sample_csv, tmp_path) -> dict:
    """The real sample broken near its end, with the file line each break is on."""
    data = sample_csv.read_bytes()
    lines = data.split(b"\n")
    quote_at = len(lines) - 100  # an unterminated quote ~100 lines from the end
    broken_quote = (
        lines[:quote_at] + [lines[quote_at].replace(b",", b',"', 1)] + lines[quote_at + 1 :]
    )
    extra_at = len(lines) - 5
    extra_field = lines[:extra_at] + [lines[extra_at] + b",extra"] + lines[extra_at + 1 :]
    samples = {
        "last 200 bytes cut": (data[:-200], data[:-200].count(b"\n") + 1),
        "unterminated quote": (b"\n".join(broken_quote), quote_at + 1),
        "extra field": (b"\n".join(extra_field), extra_at + 1),
    }
    paths = {}
    for name, (content, line) in samples.items():
        path = tmp_path / (name.replace(" ", "_") + ".csv")
        path.write_bytes(content)
        paths[name] = (path, line)
    return paths


def test_a_malformed_row_near_the_end_names_its_line_on_every_read_path(
    settings, sample_csv, tmp_path
):
    """Past DuckDB's first read, a bad row was a raw DuckDB error (API 500, CLI traceback)."""
    for name, (path, line) in _malformed_samples(sample_csv, tmp_path).items():
        reads = {
            "read_csv": lambda p=path: read_csv(p),
            "csv_table.frame": lambda p=path: _frame_of_columns(p),
            "ingest": lambda p=path: ingest(settings, p),
        }
        for how, read in reads.items():
            with pytest.raises(DpeError, match=rf"is not a readable CSV: line {line}: ") as error:
                read()
            message = str(error.value)
            assert "\n" not in message and "dpe-csv-" not in message, (name, how, message)
            assert "T20" not in message, (name, how)  # no N°DPE: the row's data is not echoed
        assert not settings.duckdb_path.exists()
    path, line = _malformed_samples(sample_csv, tmp_path)["extra field"]
    code, payload, stderr = run_cli("ingest", "--source", str(path), env=cli_env(settings))
    assert code == 2 and payload["error"]["code"] == "invalid_input"
    assert stderr.strip().splitlines()[-1].startswith(f"error: {path} is not a readable CSV: line")
    assert "Traceback" not in stderr


def _frame_of_columns(path):
    with csv_table(path) as table:
        return table.frame(["N°DPE", "Surface_utile"])


def test_the_separator_is_sniffed_past_the_header(settings, tmp_path):
    """A header with as many `;` as `,` read with `;` gave one column per row, so 0 rows
    carried a field: the lines after the header tell which separator splits them evenly."""
    text = '"note; a; b",surface_utile,conso_kwhep_m2_an\nx,850,900\ny,900,120\nz,60,300\n'
    frame = read_csv(text.encode())
    assert list(frame.columns) == ["note; a; b", "surface_utile", "conso_kwhep_m2_an"]
    assert frame["surface_utile"].tolist() == ["850", "900", "60"]
    # A quote left open in the header swallows the file: refused, never "0 rows".
    with pytest.raises(DpeError, match="no row could be read although lines follow the header"):
        read_csv(b'"a,b\n1,2\n3,4\n')
    unclosed = tmp_path / "unclosed.csv"
    unclosed.write_text('N°DPE,"Surface_utile\nS1,850\nS2,900\n')
    with pytest.raises(DpeError, match="no row could be read although lines follow the header"):
        ingest(settings, unclosed)
    source = tmp_path / "ids.csv"
    source.write_text('"note; a",N°DPE,Surface_utile\nx,S1,850\ny,S2,900\nz,S3,60\n')
    result = ingest(settings, source)
    assert (result["rows"], result["rejected"]) == (3, 0)


def test_an_unresolvable_api_host_fails_fast_and_says_what_to_do(settings):
    """A name that does not resolve (no network) was retried for 31 s with the default
    retries; it is not transient: invalid input (check the source), never retried."""
    started = time.monotonic()
    with pytest.raises(InvalidInput) as error:
        ingest(settings, "http://dpe.invalid/data-fair/api/v1/datasets/x/lines")
    assert time.monotonic() - started < 5
    assert not error.value.retryable
    message = str(error.value)
    assert "dpe.invalid is unknown" in message and "check the source URL" in message
    assert "DPE_SOURCE=path/to/export.csv" in message and "Errno" not in message
    assert not settings.duckdb_path.exists()


KILLED_INGEST = """
import os, sys
from core.config import Settings
from core.data.ingest import ingest
from core.storage import Store

original = Store.put_file


def put_then_die(self, local, path):  # kill -9 between the snapshot upload and the commit
    original(self, local, path)
    os._exit(9)


Store.put_file = put_then_die
ingest(Settings(_env_file=None, home=sys.argv[1]), sys.argv[2])
"""


def test_leftovers_of_a_killed_ingest_are_removed_by_the_next(settings, tmp_path):
    first = ingest(settings, write_csv(sample_records(), tmp_path / "a.csv"))
    more = pd.concat([sample_records(), records([{"N°DPE": "T7"}])])
    killed = subprocess.run(
        [
            sys.executable,
            "-c",
            KILLED_INGEST,
            str(settings.home),
            write_csv(more, tmp_path / "b.csv"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert killed.returncode == 9, killed.stderr[-2000:]
    store = Store(settings)
    orphans = [p for p in store.list("datasets") if first["dataset_version"] not in p]
    assert len(orphans) == 1  # the snapshot of a version never committed
    assert list(settings.home.glob("dpe-snapshot-*"))  # and its temporary folder
    assert warehouse.current_version(settings) == first["dataset_version"]

    third = records([{"N°DPE": "T8"}])
    second = ingest(settings, write_csv(pd.concat([sample_records(), third]), tmp_path / "c.csv"))
    assert not store.exists(orphans[0])
    assert not list(settings.home.glob("dpe-snapshot-*"))
    for result in (first, second):  # committed versions keep their snapshots
        assert store.exists(f"datasets/{result['dataset_version']}.parquet")


def test_a_failed_ingest_removes_the_snapshot_it_wrote(settings, tmp_path, monkeypatch):
    ingest(settings, write_csv(sample_records(), tmp_path / "a.csv"))
    before = Store(settings).list("datasets")

    def fail_after_the_snapshot(con, source, result):
        raise DpeError("the disk is full")

    monkeypatch.setattr("core.data.dataset_versions.record_ingest", fail_after_the_snapshot)
    more = pd.concat([sample_records(), records([{"N°DPE": "T7"}])])
    with pytest.raises(DpeError, match="the disk is full"):
        ingest(settings, write_csv(more, tmp_path / "b.csv"))
    assert Store(settings).list("datasets") == before
    assert not (settings.home / "snapshot-pending.txt").exists()


def test_progress_follows_the_steps(fast_http, tmp_path, sample_csv_file):
    steps = []
    ingest(fast_http, sample_csv_file, progress=lambda f, m: steps.append((f, m)))
    fractions = [f for f, _ in steps]
    assert fractions == sorted(fractions) and fractions[0] >= 0 and fractions[-1] == 1.0
    assert {"cleaning", "writing the dataset snapshot"} <= {m for _, m in steps}
    again = []  # records there already: the source's are compared and merged
    ingest(fast_http, sample_csv_file, progress=lambda f, m: again.append((f, m)))
    assert {"cleaning", "merging", "writing the dataset snapshot"} <= {m for _, m in again}
    pages = read_pages(write_pages(sample_records(), tmp_path / "p", 2))
    api_steps = []
    with page_server(pages) as server:
        ingest(fast_http, server.url, progress=lambda f, m: api_steps.append((f, m)))
    fetched = [f for f, m in api_steps if "fetched from the ADEME API" in m]
    assert len(fetched) == 3 and max(fetched) <= 0.5  # pages: the first half
    assert [f for f, _ in api_steps] == sorted(f for f, _ in api_steps)


def test_preview_counts_added_updated_unchanged_and_writes_nothing(
    settings, tmp_path, sample_csv_file
):
    assert ingest_preview(settings, sample_csv_file) == {"added": 6, "updated": 0, "unchanged": 0}
    assert not settings.duckdb_path.exists()
    ingest(settings, sample_csv_file)
    before = state(settings)
    frame = sample_records()
    frame.loc[frame["N°DPE"] == "T5", "Surface_utile"] = "30"
    frame = pd.concat([frame, records([{"N°DPE": "T7"}, {"N°DPE": "T8"}])])
    changed = write_csv(frame, tmp_path / "v2.csv")
    expected = {"added": 2, "updated": 1, "unchanged": 5}
    assert ingest_preview(settings, changed) == expected
    assert state(settings) == before
    result = ingest(settings, changed)
    assert {key: result[key] for key in expected} == expected
    code, payload, stderr = run_cli(
        "ingest", "--source", str(changed), "--preview", env=cli_env(settings)
    )
    assert (code, payload) == (0, {"added": 0, "updated": 0, "unchanged": 8}), stderr


def test_no_network_route_is_not_retried_either():
    """Offline machines answer ENETUNREACH when DNS is cached: no retry helps that either."""
    try:
        try:
            raise OSError(errno.ENETUNREACH, "Network is unreachable")
        except OSError as cause:
            raise httpx.ConnectError("connect failed") from cause
    except httpx.ConnectError as error:
        offline = ademe_api._offline(error, "data.ademe.fr")
        assert isinstance(offline, Unavailable) and "no network route" in str(offline)
    refused = httpx.ConnectError("refused")
    refused.__cause__ = ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")
    assert ademe_api._offline(refused, "data.ademe.fr") is None  # a server restarting: retried
