"""The sources of ADEME records, and the JSON API pages among them.

A source is a CSV export (read by `core.data.csv_source`), JSON API pages: a file or a folder
of them (`read_json_pages`, here), or the ADEME API's URL (fetched by `core.data.ademe_api`);
`source_kind` tells which. API records, from pages or the API, become a frame of text
columns with `records_frame`. What is done with the records (staging, cleaning, versions)
is `core.data.ingest`'s.
"""

import codecs
import json
from pathlib import Path
from typing import TYPE_CHECKING

from core.errors import DpeError, InvalidInput

if TYPE_CHECKING:  # loaded for API records only: a CSV ingest never needs pandas
    import pandas as pd

SNIFF_BYTES = 64 * 1024


def head(source: str | Path | bytes, name: str) -> bytes:
    """The first bytes of a file (or of the bytes given), checked to be non-empty text."""
    if isinstance(source, bytes):
        first = source[:SNIFF_BYTES]
    elif not Path(source).exists():
        raise DpeError(f"source {name} does not exist")
    elif not Path(source).is_file():
        raise DpeError(f"source {name} is not a file")
    else:
        with open(source, "rb") as file:
            first = file.read(SNIFF_BYTES)
    if not first.strip():
        raise DpeError(f"source {name} is empty")
    if b"\x00" in first:
        raise not_text(name, first, "a CSV or JSON file")
    return first


# Files a spreadsheet saves: the user most likely meant to export them as CSV.
SPREADSHEETS = {"xlsx", "xls", "ods"}


def not_text(name: str, first: bytes, expected: str, where: str = "") -> DpeError:
    """The error for a binary file given where text was expected, saying what the file is
    from its first bytes (`source a.csv is a .png file (image/png), not a CSV`), or "a binary
    file" when its kind is not known; `where` adds where the binary content was found."""
    import filetype

    kind = filetype.guess(first)
    what = "a binary file" if kind is None else f"a .{kind.extension} file ({kind.mime})"
    hint = ""
    if kind is not None and kind.extension in SPREADSHEETS:
        hint = ": save it as CSV from the spreadsheet first"
    return DpeError(f"source {name} is {what}, not {expected}{where}{hint}")


def source_kind(source: str) -> str:
    """'api' for an http(s) URL, else 'json' or 'csv' by the file's content."""
    if source.startswith(("http://", "https://")):
        return "api"
    if Path(source).is_dir():
        return "json"
    first = head(source, source).lstrip(codecs.BOM_UTF8 + b" \t\r\n")[:1]
    return "json" if first in (b"{", b"[") else "csv"


def parse_json(text: str, where: str):
    """A JSON page's content; `where` names it in the error if it is not JSON."""
    try:
        # Numbers keep their source text: raw records are stored as text, unchanged.
        return json.loads(text, parse_float=str, parse_int=str)
    except json.JSONDecodeError as error:
        raise DpeError(f"{where} is not valid JSON (truncated?): {error}") from error
    except RecursionError as error:  # thousands of nested [ or {: no ADEME page is
        raise InvalidInput(f"{where} is nested too deeply to be an ADEME API page") from error


def page_records(page, where: str) -> list[dict]:
    """Records of one API page: `{"total", "next", "results": [...]}` or a bare list."""
    records = page.get("results") if isinstance(page, dict) else page
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise DpeError(f"{where} is not an ADEME API page (a list of records or `results`)")
    return records


def read_json_pages(path: Path) -> list[dict]:
    """The records of a JSON API page file, or of every `*.json` page in a folder."""
    files = sorted(path.glob("*.json")) if path.is_dir() else [path]
    if not files:
        raise DpeError(f"source {path} holds no .json file")
    records = []
    for file in files:
        try:
            text = file.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError as error:
            raise DpeError(f"{file} is not UTF-8 JSON: {error.reason}") from error
        records.extend(page_records(parse_json(text, str(file)), str(file)))
    return records


def _as_text(value):
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value, ensure_ascii=False)  # a nested object or list


def records_frame(records: list[dict]) -> "pd.DataFrame":
    """API records as a frame of text columns (raw records are stored as text)."""
    import pandas as pd

    return pd.DataFrame.from_records(
        [{key: _as_text(value) for key, value in record.items()} for record in records]
    )
