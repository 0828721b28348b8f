"""Ingest sources made by code for tests: ADEME records in CSV dialects and API pages,
a local ADEME API (pages as a `next` chain, with scripted failures), and a snapshot of
the database and store to check that a failed ingest changed nothing."""

import json
import subprocess
import sys
import textwrap
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import duckdb
import pandas as pd

from core.config import Settings
from core.data.schema import COLUMN_TYPES, COLUMNS, SNAKE_TO_OFFICIAL
from core.storage import Store

# ERP types the ADEME sample lacks (issue 12), and a free-text sector: records with them are
# predicted, with a warning, never refused.
UNSEEN_SECTORS = (
    "PA : Établissements de plein air",
    "CTS : Chapiteaux, tentes et structures",
    "SG : Structures gonflables",
    "PS : Parcs de stationnement couverts",
    "GA : Gares accessibles au public",
    "OA : Hôtels-restaurants d'altitude",
    "EF : Établissements flottants",
    "REF : Refuges de montagne",
    "Ferme pédagogique avec gîte",  # free text, no ERP code
)

OFFICIAL = [official for official, _, _ in COLUMNS]
NUMBER_COLUMNS = [SNAKE_TO_OFFICIAL[s] for s, kind in COLUMN_TYPES.items() if kind == "number"]
INTEGER_COLUMNS = [SNAKE_TO_OFFICIAL[s] for s, kind in COLUMN_TYPES.items() if kind == "integer"]


def records(rows: list[dict]) -> pd.DataFrame:
    """Records in the official 63-column format, as text; fields not given are empty."""
    base = {
        "Date_réception_DPE": "2022-05-31",
        "Version_DPE": "2.2",
        "Méthode_du_DPE": "dpe tertiaire facture",
        "Période_construction": "1948-1974",
        "Secteur_activité": "W : Administrations, banques, bureaux",
        "Code_postal_(BAN)": "01170",
        "Adresse_brute": "1 rue d’Été\n2e étage",  # a cp1252-only quote, a newline
    }
    frame = pd.DataFrame([{**base, **row} for row in rows], columns=OFFICIAL, dtype=object)
    return frame.where(frame.notna(), None)


def sample_records() -> pd.DataFrame:
    """Six records: labelled, placeholders, unlabelled, and three the cleaning rejects."""
    return records(
        [
            {
                "N°DPE": "T1",
                "Etiquette_DPE": "C",
                "Conso_kWhep/m²/an": "180.5",
                "Surface_utile": "250.0",
            },
            {
                "N°DPE": "T2",
                "Etiquette_DPE": "A",
                "Conso_kWhep/m²/an": "0.1",
                "Surface_utile": "100.0",
            },
            {"N°DPE": "T3", "Surface_utile": "1234.5", "Année_construction": "1975"},
            {"N°DPE": "T4", "Etiquette_DPE": "I", "Conso_kWhep/m²/an": "90", "Surface_utile": "80"},
            {"N°DPE": "T5", "Etiquette_DPE": "B", "Surface_utile": "-3"},
            {"N°DPE": "T6", "Etiquette_DPE": "D", "Surface_utile": "abc"},
        ]
    )


def write_csv(frame: pd.DataFrame, path: Path, sep=",", encoding="utf-8", decimal=".") -> Path:
    """An ADEME-style CSV export of `frame` (text values) in the given dialect."""
    out = frame.copy()
    if decimal != ".":
        for column in set(NUMBER_COLUMNS) & set(out.columns):
            out[column] = out[column].str.replace(".", decimal, regex=False)
    out.to_csv(path, sep=sep, encoding=encoding, index=False)
    return path


def reencode(source: Path, target: Path) -> Path:
    """A CSV export re-encoded the French-Excel way: `;`, cp1252, decimal comma."""
    frame = pd.read_csv(source, dtype=str, keep_default_na=False)
    return write_csv(frame, target, sep=";", encoding="cp1252", decimal=",")


def _json_value(column: str, text: str):
    """As the API serves it: numbers as JSON numbers (integral ones as integers)."""
    try:
        number = float(text)
    except ValueError:
        return text  # not a number: only a broken source would serve it, as text
    if column in NUMBER_COLUMNS or column in INTEGER_COLUMNS:
        return int(number) if number.is_integer() else number
    return text


def api_records(frame: pd.DataFrame) -> list[dict]:
    """Records as the API gives them: a null field is absent, numbers are numbers."""
    return [
        {column: _json_value(column, value) for column, value in row.items() if value is not None}
        for row in frame.to_dict("records")
    ]


def write_pages(frame: pd.DataFrame, folder: Path, page_size: int) -> Path:
    """API pages in both shapes (`{"total", "next", "results"}` then bare lists), each page
    also repeating the previous page's last record, as overlapping cursor pages do."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = api_records(frame)
    for number, start in enumerate(range(0, len(rows), page_size)):
        page = rows[max(0, start - 1) : start + page_size]
        body = {"total": len(rows), "next": None, "results": page} if number % 2 == 0 else page
        (folder / f"page_{number:02d}.json").write_text(json.dumps(body, ensure_ascii=False))
    return folder


class _PageHandler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's name)
        server = self.server
        query = parse_qs(urlparse(self.path).query)
        number = int(query.get("page", ["0"])[0])
        server.requests.append(self.path)
        failure = server.failures.pop(number, None)
        if failure:
            self.send_response(failure)
            self.send_header("Retry-After", "0")
            self.end_headers()
            return
        page = server.pages[number]
        results = page["results"] if isinstance(page, dict) else page
        last = number + 1 == len(server.pages)
        next_url = None if last else f"{server.url}?page={number + 1}"
        body = json.dumps({"total": 0, "next": next_url, "results": results}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):  # keep test output quiet
        pass


@contextmanager
def page_server(pages: list, failures: dict[int, int] | None = None):
    """A local ADEME API on 127.0.0.1 serving `pages` as a `next` chain; `failures` maps a
    page number to the status its first request gets (429, 500...). Yields the server:
    `.url` (the first page) and `.requests` (paths asked, in order)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _PageHandler)
    server.pages = pages
    server.failures = dict(failures or {})
    server.requests = []
    server.url = f"http://127.0.0.1:{server.server_address[1]}/lines"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def read_pages(folder: Path) -> list:
    return [json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))]


def state(settings: Settings) -> dict | None:
    """Everything an ingest may change: every table's rows, and the store's objects."""
    store = Store(settings).list("")
    path = settings.duckdb_path
    if not path.exists():
        return {"database": None, "store": store}
    with duckdb.connect(str(path), read_only=True) as con:
        tables = [row[0] for row in con.execute("SHOW TABLES").fetchall()]
        content = {
            table: sorted(map(repr, con.execute(f'SELECT * FROM "{table}"').fetchall()))
            for table in tables
        }
    return {"database": content, "store": store}


@contextmanager
def held_by_another_process(settings):
    """The database file open read-write in another process, as an ingest holds it."""
    holder = textwrap.dedent(f"""
        import duckdb, time
        con = duckdb.connect({str(settings.duckdb_path)!r})
        print("holding", flush=True)
        time.sleep(30)
    """)
    process = subprocess.Popen([sys.executable, "-c", holder], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == "holding"
        yield
    finally:
        process.kill()
        process.wait()


def utf8_export_with_a_bad_byte(path, line: int = 2151, rows: int = 2200):
    """A UTF-8 export whose line `line` holds one byte that is not UTF-8 (0xFF)."""
    text = ["N°DPE,Secteur_activité,Type_énergie_n°1,Surface_utile"] + [
        f'D{row},"W : Administrations, banques, bureaux",Électricité,{100 + row}'
        for row in range(rows)
    ]
    data = "\n".join(text).encode().split(b"\n")
    data[line - 1] = data[line - 1].replace(b"bureaux", b"bureaux\xff", 1)  # inside a text
    path.write_bytes(b"\n".join(data) + b"\n")
    return path
