"""Reading a CSV export of ADEME records with DuckDB, every column as text.

A CSV is `,` `;` or tab separated, UTF-8 or cp1252 (transcoded to a temporary UTF-8 file;
the encoding decided on the whole file, a file valid in neither refused naming the line),
with a decimal point or comma. The dialect is set from the header and the lines after it,
never sniffed by DuckDB; a malformed line is a DpeError naming its line in the file.
`read_csv` gives a frame; `csv_table` keeps the file open in DuckDB for a block.
"""

import codecs
import csv
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from core import tempfiles
from core.data.sources import head, not_text
from core.data.warehouse import literal, quote
from core.errors import DpeError

if TYPE_CHECKING:  # loaded when a frame is made: an ingest never needs pandas
    import pandas as pd

log = logging.getLogger(__name__)

SNIFF_LINES = 50  # lines after the header the separator is checked on
CHUNK_BYTES = 1 << 20
DELIMITERS = (";", ",", "\t")


# A well-formed UTF-8 sequence of two to four bytes. cp1252 French text seldom holds one
# (`é` is then 0xE9 followed by a letter, not by 0x80-0xBF).
_UTF8_MULTIBYTE = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|\xe0[\xa0-\xbf][\x80-\xbf]|[\xe1-\xec\xee\xef][\x80-\xbf]{2}"
    rb"|\xed[\x80-\x9f][\x80-\xbf]|\xf0[\x90-\xbf][\x80-\xbf]{2}|[\xf1-\xf3][\x80-\xbf]{3}"
    rb"|\xf4[\x80-\x8f][\x80-\xbf]{2}"
)
_HIGH_BYTES = bytes(range(0x80, 0x100))
_CP1252_UNDEFINED = re.compile(rb"[\x81\x8d\x8f\x90\x9d]")
# A file that is not UTF-8 is read as cp1252 only when its bytes that are not UTF-8 outnumber
# its UTF-8 sequences this many times: ADEME's sample saved as cp1252 has 24,576 against 98
# (texts already garbled upstream), the sample with one bad byte 1 against 24,857.
CP1252_MIN_RATIO = 10


@dataclass
class _Position:
    """A byte of the file and the line it is on (1 = the header)."""

    line: int
    value: int


@dataclass
class _Evidence:
    """What a file's bytes say of its encoding, gathered a chunk at a time."""

    decoder: codecs.IncrementalDecoder = field(
        default_factory=codecs.getincrementaldecoder("utf-8")
    )
    lines: int = 1  # the line the next chunk starts on
    not_utf8: _Position | None = None  # the first byte that is not UTF-8
    undefined: _Position | None = None  # the first byte cp1252 leaves undefined
    sequences: int = 0  # well-formed UTF-8 sequences of two to four bytes
    stray: int = 0  # bytes of 0x80 and above in none of them

    def add(self, chunk: bytes) -> None:
        if self.not_utf8 is None and (bad := self._first_invalid(chunk)) is not None:
            self.not_utf8 = self._at(chunk, max(bad, 0))
        rest, found = _UTF8_MULTIBYTE.subn(b"", chunk)  # (a sequence a chunk's end cuts: lost)
        self.sequences += found
        self.stray += len(rest) - len(rest.translate(None, _HIGH_BYTES))
        if self.undefined is None and (match := _CP1252_UNDEFINED.search(chunk)):
            self.undefined = self._at(chunk, match.start())
        self.lines += chunk.count(b"\n")

    def end(self, last: int) -> None:
        if self.not_utf8 is None and self._first_invalid(b"", final=True) is not None:
            self.not_utf8 = _Position(self.lines, last)  # the file ends inside a sequence

    def _first_invalid(self, data: bytes, final: bool = False) -> int | None:
        """Where in `data` the first byte that is not UTF-8 is (negative: in the bytes held
        from the last chunk), or None."""
        held = len(self.decoder.getstate()[0])
        try:
            self.decoder.decode(data, final)
        except UnicodeDecodeError as error:
            return error.start - held
        return None

    def _at(self, chunk: bytes, index: int) -> _Position:
        return _Position(self.lines + chunk.count(b"\n", 0, index), chunk[index])


def _encoding(path: Path, name: str) -> str:
    """The file's encoding (`_weighed_encoding`), valid UTF-8 told at once: a file that
    decodes throughout, without a NUL byte, needs none of the evidence (a second a GB)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    with open(path, "rb") as file:
        try:
            while chunk := file.read(CHUNK_BYTES):
                if b"\x00" in chunk:
                    break
                decoder.decode(chunk)
            else:
                decoder.decode(b"", True)
                return "utf-8"
        except UnicodeDecodeError:
            pass
    return _weighed_encoding(path, name)


def _weighed_encoding(path: Path, name: str) -> str:
    """The file's encoding, decided on all of it: "utf-8" when it is valid UTF-8 throughout;
    "cp1252" when its bytes that are not UTF-8 make up its non-ASCII text
    (CP1252_MIN_RATIO); else, a UTF-8 file with a bad byte somewhere, or a byte cp1252
    leaves undefined, a DpeError naming the line: read either way, its text would change
    without a word. A DpeError too for a NUL byte anywhere: text never holds one, and
    DuckDB would read it into the values."""
    evidence, offset, last = _Evidence(), 0, 0
    with open(path, "rb") as file:
        while chunk := file.read(CHUNK_BYTES):
            if (nul := chunk.find(b"\x00")) >= 0:
                where = f": a NUL byte at byte {offset + nul}"
                raise not_text(name, chunk if offset == 0 else b"", "a CSV", where)
            evidence.add(chunk)
            offset, last = offset + len(chunk), chunk[-1]
    evidence.end(last)
    bad, undefined = evidence.not_utf8, evidence.undefined
    if bad is None:
        return "utf-8"
    if evidence.stray <= CP1252_MIN_RATIO * evidence.sequences:
        raise DpeError(
            f"{name} is UTF-8 text but line {bad.line} holds a byte that is not "
            f"(0x{bad.value:02X}): correct that line, or save the file again as UTF-8. "
            "Read as cp1252, its accented text would change"
        )
    if undefined is not None:
        raise DpeError(
            f"{name} is neither UTF-8 nor cp1252 text: line {undefined.line} holds byte "
            f"0x{undefined.value:02X}"
        )
    return "cp1252"


def _transcode_cp1252(source: Path, target: Path) -> None:
    # cp1252, not latin-1: ADEME's texts hold ’ and – which only cp1252 maps.
    with (
        open(source, encoding="cp1252", newline="") as src,
        open(target, "w", encoding="utf-8", newline="") as dst,
    ):
        while chunk := src.read(CHUNK_BYTES):
            dst.write(chunk)


@contextmanager
def utf8_csv_file(source: str | Path | bytes, name: str) -> Iterator[Path]:
    """`source` (a path, or the bytes of a file) as a UTF-8 file on disk DuckDB can scan."""
    with tempfiles.temporary_dir("csv") as tmp:
        path = Path(tmp) / "upload.csv" if isinstance(source, bytes) else Path(source)
        if isinstance(source, bytes):
            path.write_bytes(source)
        if _encoding(path, name) == "cp1252":
            utf8 = Path(tmp) / "utf8.csv"
            _transcode_cp1252(path, utf8)
            path = utf8
        yield path


def _head_lines(path: Path) -> list[str]:
    """The header and up to SNIFF_LINES lines after it (whole lines, blank ones left out)."""
    with open(path, encoding="utf-8-sig", newline="") as file:
        lines = [file.readline() for _ in range(SNIFF_LINES + 1)]
    return [line for line in lines if line.strip()]


def _delimiter(lines: list[str]) -> str:
    """The separator that splits the header and the lines after it into the same number of
    fields (more than one); else the one the header holds most. A header alone cannot tell:
    `"note; a; b",surface_utile` holds as many `;` as `,`."""
    consistent = {}
    for delimiter in DELIMITERS:
        try:
            rows = list(csv.reader(lines, delimiter=delimiter))
        except csv.Error:  # not this separator's CSV (a field past csv's size limit)
            continue
        if len(lines) > SNIFF_LINES:  # the window may end inside a record
            rows = rows[:-1]
        widths = {len(row) for row in rows}
        if len(rows) > 1 and len(widths) == 1 and widths != {1}:
            consistent[delimiter] = len(rows[0])
    if consistent:
        return max(consistent, key=lambda delimiter: consistent[delimiter])
    return max(DELIMITERS, key=lines[0].count)


def _csv_header(path: Path, name: str) -> tuple[list[str], str]:
    """The CSV's column names and separator (ADEME column names hold none of them)."""
    lines = _head_lines(path)
    delimiter = _delimiter(lines) if lines else ","
    names = next(csv.reader(lines[:1], delimiter=delimiter), [])
    if not any(names):
        raise DpeError(f"{name} is empty: no header line")
    if len(set(names)) < len(names):
        raise DpeError(f"{name}: a column name appears twice in the header")
    return names, delimiter


def csv_scan(path: Path, name: str) -> tuple[str, list[str], str]:
    """A DuckDB table function reading the CSV with every column as text, its columns and
    its separator.

    The dialect is set, not sniffed: sniffing could take `#` for a comment, and a set
    dialect gets errors that name the line at fault.
    """
    names, delimiter = _csv_header(path, name)
    columns = ", ".join(f"{literal(column)}: 'VARCHAR'" for column in names)
    scan = (
        f"read_csv({literal(str(path))}, auto_detect = false, header = true, "
        f"columns = {{{columns}}}, delim = {literal(delimiter)}, quote = '\"', escape = '\"')"
    )
    return scan, names, delimiter


def csv_error(name: str, error: duckdb.Error, path: Path | None = None, delimiter=",") -> DpeError:
    """What is wrong and on which line of the file, from DuckDB's long CSV error; its tips,
    the row's data and the temporary file's path go to the log only."""
    log.debug("CSV %s: %s", name, error)
    text = str(error)
    record = re.search(r"CSV Error on Line: (\d+)", text)
    where = ""
    if record:  # DuckDB counts records (the header is 1); an editor counts lines
        line = _file_line(path, delimiter, int(record[1])) if path else None
        where = f"line {line}: " if line else f"record {int(record[1]) - 1}: "
    return DpeError(f"{name} is not a readable CSV: {where}{_csv_problem(text)}")


def _file_line(path: Path, delimiter: str, record: int) -> int | None:
    """The line of the file where DuckDB's `record` (header = 1) starts: values in quotes
    may hold line breaks, so records and lines differ."""
    with open(path, encoding="utf-8-sig", newline="") as file:
        reader = csv.reader(file, delimiter=delimiter)
        try:
            for _ in range(record - 1):
                next(reader)
        except (StopIteration, csv.Error):
            return None
        return reader.line_num + 1


def _csv_problem(text: str) -> str:
    """DuckDB's reason, said in words a user knows."""
    if "unterminated quote" in text:
        return 'a quote (") is opened and never closed'
    if counts := re.search(r"Expected Number of Columns: (\d+) Found: (\d+)", text):
        expected, found = int(counts[1]), int(counts[2])
        more = "more" if found > expected else "fewer"
        return f"the row has {more} fields ({found}) than the header ({expected})"
    first = text.splitlines()[0] if text.strip() else "malformed row"
    return first.split("Error:", 1)[-1].strip()[:200]


def read_csv(source: str | Path | bytes, name: str | None = None) -> "pd.DataFrame":
    """Read a CSV (a path or a file's bytes) as text columns named as in its header.

    `,` `;` or tab separated, UTF-8 or cp1252; empty cells are missing values. Column
    names may be the official ADEME ones or snake_case: `clean()` accepts both.
    """
    with csv_table(source, name) as table:
        return table.frame()


@dataclass
class CsvTable:
    """A CSV open in DuckDB for a `with csv_table(...)` block: every column as text."""

    connection: duckdb.DuckDBPyConnection
    scan: str  # a table function reading the file, for queries on the connection
    columns: list[str]  # as named in the header
    name: str  # what error messages call the file
    path: Path  # the file DuckDB reads (UTF-8)
    delimiter: str

    def frame(self, columns: list[str] | None = None) -> "pd.DataFrame":
        """The rows, with all the columns or the ones given (in that order)."""
        import pandas as pd

        if columns == []:  # no columns, but as many rows
            [(rows,)] = self.fetch(f"SELECT count(*) FROM {self.scan}", "fetchall")
            frame = pd.DataFrame(index=range(rows))
        else:
            selected = "*" if columns is None else ", ".join(quote(c) for c in columns)
            frame = self.fetch(f"SELECT {selected} FROM {self.scan}", "df")
        if len(frame.index) == 0 and has_data_lines(self.path):
            raise no_rows_error(self.name)
        return frame

    def fetch(self, sql: str, how: str):
        """`sql` run and its result fetched (`fetchall`, `df`...): a malformed row, found
        while fetching, is a DpeError naming its line."""
        try:
            return getattr(self.connection.execute(sql), how)()
        except duckdb.Error as error:
            raise csv_error(self.name, error, self.path, self.delimiter) from error

    def query(self, sql: str) -> duckdb.DuckDBPyConnection:
        """Run `sql` (which reads `scan`) for its effect; a malformed row is a DpeError."""
        return self.fetch(sql, "fetchall")


@contextmanager
def csv_table(source: str | Path | bytes, name: str | None = None) -> Iterator[CsvTable]:
    """A CSV (a path or a file's bytes) open in DuckDB for the block, as `read_csv` reads
    it: for work that does not need every column in pandas."""
    name = name or ("uploaded CSV" if isinstance(source, bytes) else str(source))
    head(source, name)
    with utf8_csv_file(source, name) as path, duckdb.connect() as con:
        scan, columns, delimiter = csv_scan(path, name)
        yield CsvTable(con, scan, columns, name, path, delimiter)


def no_rows_error(name: str) -> DpeError:
    """For a CSV read as no rows although lines follow its header (never "0 rows")."""
    return DpeError(
        f'{name}: no row could be read although lines follow the header; is a quote (") '
        "in the header left open?"
    )


def has_data_lines(path: Path) -> bool:
    """Whether a non-blank line follows the header."""
    return len(_head_lines(path)) > 1
