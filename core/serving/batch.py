"""Batch prediction: a whole frame or CSV file through the champion, vectorised.

`predict_frame(champion, frame)` keeps every row: the input columns, then
`predicted_label`, `proba_A`..`proba_G`, `label_set` (the labels kept at `DPE_SET_COVERAGE`,
in A..G order joined by `|`, e.g. `C|D`; empty when the champion has no calibration) and
`set_size`, `error` (why the row was not predicted: messages joined by `; `), `error_code`
(their codes, `core.data.validation.ERROR_CODES`, joined by `|` in the same order) and
`warning` (it was, setting aside a category the model never saw). `predict_csv` does the
same from a CSV to a CSV (UTF-8, `,`) in one pass: DuckDB reads and cleans blocks of
`CHUNK_VECTORS` vectors, handed over as Arrow with the columns a prediction does not read,
and another DuckDB connection writes each block while the next is predicted. Text cells a
spreadsheet would run as formulas, column names included, are neutralised in what is
written (`core.data.csv_cells`).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict

import numpy as np

from core import tempfiles
from core.data.csv_cells import safe_cell, safe_sql, safe_text_columns
from core.data.feature_sets import FEATURE_SETS
from core.data.schema import COLUMNS, LABELS, RECORD_FIELDS, source_columns, to_snake_case
from core.data.validation import (
    KEEP_ROW_ORDER,
    LABEL_FIELD,
    REJECT_FIELDS,
    Problem,
    RowErrors,
    RowWarnings,
    clean,
    clean_sql,
)
from core.errors import DpeError
from core.modeling import conformal
from core.modeling.encoding import distinct_rows
from core.progress import Progress, no_progress
from core.serving.champion import Champion, Prediction

if TYPE_CHECKING:
    import pandas as pd

    from core.data.csv_source import CsvTable

PROBA_COLUMNS = tuple(f"proba_{label}" for label in LABELS)
PREDICTION_COLUMNS = (
    "predicted_label",
    *PROBA_COLUMNS,
    "label_set",
    "set_size",
    "error",
    "error_code",
    "warning",
)
TEXT_COLUMNS = ("error", "error_code", "warning")  # empty when the row has none
CHUNK_ROWS = 20_000  # rows predicted at a time: bounds memory, paces progress
CHUNK_VECTORS = 2  # DuckDB vectors (2,048 rows each) read from a CSV at a time
QUEUED_BLOCKS = 1  # blocks predicted and waiting for the CSV writer, at most
WRITER_THREADS = 1  # the CSV writer's DuckDB threads


class Agreement(TypedDict):
    """How often the prediction is the label the file gives (`Etiquette_DPE`)."""

    share: float
    n: int


class BatchSummary(TypedDict):
    rows: int
    predicted: int
    rejected: int
    warned: int
    missing_fields: list[str]  # fields of the model the file has no column for
    agreement: Agreement | None  # None when the file has no label
    mean_set_size: float | None  # of the predicted rows; None without label sets


def model_fields(champion: Champion) -> list[str]:
    """The record fields the champion reads."""
    names = [entry["name"] for entry in champion.manifest.input_schema]
    feature_set = champion.manifest.feature_set
    return names or list(FEATURE_SETS[feature_set].fields if feature_set else RECORD_FIELDS)


def missing_fields(champion: Champion, columns) -> list[str]:
    """The model's fields the columns (by either name) lack; DpeError when they have none,
    as such a file cannot be what the user meant to predict."""
    fields = model_fields(champion)
    present = set(to_snake_case(list(columns)))
    missing = [name for name in fields if name not in present]
    if len(missing) == len(fields):
        expected = ", ".join(f"{RECORD_FIELDS[name].official} ({name})" for name in fields)
        raise DpeError(f"the file has none of the model's fields; expected some of: {expected}")
    return missing


def predict_frame(
    champion: Champion,
    frame: pd.DataFrame,
    source: str = "batch",
    progress: Progress = no_progress,
    client: str | None = None,
) -> pd.DataFrame:
    """The input rows, all of them in order, plus PREDICTION_COLUMNS. Rows are checked as
    ingest checks them (`clean`), then as `Champion.predict` checks records; those that fail
    carry the reason and are not predicted. `attrs["missing_fields"]` lists the model's
    fields the frame lacks (DpeError when it has none)."""
    missing = missing_fields(champion, frame.columns)
    predictions = _predictions(champion, frame, source, progress, client=client)
    result = frame.drop(columns=[c for c in PREDICTION_COLUMNS if c in frame])
    result = result.reset_index(drop=True)
    for column in PREDICTION_COLUMNS:
        result[column] = predictions[column].to_numpy()
    result.attrs["missing_fields"] = missing
    return result


def _predictions(
    champion: Champion,
    frame: pd.DataFrame,
    source: str,
    progress: Progress = no_progress,
    client: str | None = None,
    request_id: str | None = None,
) -> pd.DataFrame:
    """PREDICTION_COLUMNS for the frame's rows (index 0..n-1); `client` and `request_id`
    (who asked) go to the champion's prediction sink."""
    # clean() checks only the record fields and the label for a prediction: give it those
    # (the other columns are kept as they came), which halves its time on ADEME's 63.
    cleaned = clean(frame[checked_columns(frame.columns)], by_field=True).reset_index(drop=True)
    return _predicted(champion, cleaned, source, progress, client, request_id)


def _predicted(
    champion: Champion,
    cleaned: pd.DataFrame,
    source: str,
    progress: Progress = no_progress,
    client: str | None = None,
    request_id: str | None = None,
) -> pd.DataFrame:
    """`_predictions` of rows `clean(..., by_field=True)` gave (index 0..n-1)."""
    import pandas as pd

    fields = {
        name: _object_column(cleaned[name])
        if spec.kind == "category"
        else cleaned[name].to_numpy(dtype=float, na_value=np.nan)
        for name, spec in RECORD_FIELDS.items()
    }
    problems = {
        name: (
            cleaned[f"_code_{name}"].to_numpy(dtype=object),
            cleaned[f"_reason_{name}"].to_numpy(dtype=object),
        )
        for name in REJECT_FIELDS
    }
    answer = _answer(champion, fields, problems, source, progress, client, request_id)
    result = pd.DataFrame(answer.proba, columns=list(PROBA_COLUMNS))
    result.insert(0, "predicted_label", answer.labels)
    result["label_set"] = np.where(answer.has_set, answer.set_texts, "")
    sizes = answer.set_sizes.astype(object)
    sizes[~answer.has_set] = None
    result["set_size"] = pd.array(sizes, "Int64")
    for column in TEXT_COLUMNS:
        texts = getattr(answer, column)
        result[column] = np.where(pd.isna(texts), "", texts)
    return result


@dataclass
class _Answer:
    """The predictions of a block of rows, as arrays: None (NaN in `proba`) where a row has
    no label, no set, no error, no warning."""

    labels: np.ndarray  # object
    proba: np.ndarray  # (n, 7)
    has_set: np.ndarray  # bool: the row has a label set
    set_texts: np.ndarray  # its labels joined by `|`
    set_sizes: np.ndarray  # int
    error: np.ndarray  # object: messages joined by `; `
    error_code: np.ndarray  # object: codes joined by `|`
    warning: np.ndarray  # object


def _answer(
    champion: Champion,
    fields: dict[str, np.ndarray],
    problems: dict[str, tuple[np.ndarray, np.ndarray]],
    source: str,
    progress: Progress = no_progress,
    client: str | None = None,
    request_id: str | None = None,
) -> _Answer:
    """The predictions of cleaned rows: `fields` their record fields (object arrays for
    categories, None where missing; float arrays for numbers), `problems` per field what
    `clean` found (codes and reasons, None where valid)."""
    n = len(fields[next(iter(RECORD_FIELDS))])
    columns = {n_: v for n_, v in fields.items() if RECORD_FIELDS[n_].kind == "category"}
    floats = {n_: v for n_, v in fields.items() if RECORD_FIELDS[n_].kind != "category"}
    errors, warnings = RowErrors(n), RowWarnings(n)
    for name, (codes, reasons) in problems.items():
        errors.add_found(name, codes, reasons)
    champion.check(columns, floats, errors, warnings, number_checks={})  # clean() did the schema's
    messages, warned = errors.messages(), warnings.joined()
    failed = np.zeros(n, dtype=bool)
    failed[list(errors.rows)] = True
    valid = np.flatnonzero(~failed)
    inputs = {**columns, **floats}
    proba = np.full((n, len(LABELS)), np.nan)
    for start in range(0, len(valid), CHUNK_ROWS):
        rows = valid[start : start + CHUNK_ROWS]
        proba[rows] = champion.columns_proba({name: fields[name][rows] for name in RECORD_FIELDS})
        progress((start + len(rows)) / len(valid), f"predicted {start + len(rows):,} rows")
    labels = np.full(n, None, dtype=object)
    labels[valid] = champion.labels_of(proba[valid])
    kept = np.zeros((n, len(LABELS)), dtype=bool)
    found = champion.kept_labels(proba[valid], labels[valid])
    if found is not None:
        kept[valid] = found
    champion.hand_to_sink(
        inputs,
        lambda: _results(labels, proba, kept, messages, errors.rows, warnings.rows),
        source,
        client,
        request_id,
    )
    return _Answer(
        labels=labels,
        proba=proba,
        has_set=np.asarray(kept.any(axis=1)),
        set_texts=conformal.set_texts(kept),
        set_sizes=kept.sum(axis=1),
        error=messages,
        error_code=errors.codes(),
        warning=warned,
    )


def checked_columns(columns) -> list[str]:
    """The columns a prediction reads (record fields and the label, by either name)."""
    return [
        column
        for column, name in zip(columns, to_snake_case(columns), strict=True)
        if name in RECORD_FIELDS or name == LABEL_FIELD
    ]


def predict_csv(
    champion: Champion,
    source: str | Path | bytes,
    target: str | Path,
    name: str | None = None,
    source_tag: str = "batch",
    progress: Progress = no_progress,
    client: str | None = None,
    request_id: str | None = None,
) -> BatchSummary:
    """`predict_frame` on a CSV file (a path or its bytes), written to `target` as
    `write_csv` writes it; returns its `summary`. One pass over the file: DuckDB reads it
    and cleans the columns a prediction reads, a block at a time, handing them over as
    Arrow with the other columns (formula cells neutralised); numpy predicts; another
    DuckDB connection writes each block, answer included, while the next is predicted
    (memory holds a few blocks, never the file)."""
    from core.data.csv_source import csv_table  # DuckDB: imported when a batch comes

    with csv_table(source, name) as table:
        missing = missing_fields(champion, table.columns)
        kept = [c for c in table.columns if c not in PREDICTION_COLUMNS]
        tally = _Tally(LABEL_FIELD in to_snake_case(table.columns))
        lines = max(_line_count(table.path) - 1, 1)  # rows, unless values hold line breaks
        done = 0.0
        with _CsvWriter(target, [safe_cell(c) for c in kept]) as writer:
            for fields, problems, label, passed in _cleaned_blocks(table, kept):
                answer = _answer(
                    champion, fields, problems, source_tag, client=client, request_id=request_id
                )
                tally.add(answer, label)
                writer.write(passed, answer)
                done = min(tally.rows / lines, 1.0)
                progress(done, f"predicted {tally.rows:,} rows")
        if done < 1.0:  # values holding line breaks: fewer rows than lines
            progress(1.0, f"predicted {tally.rows:,} rows")
    return tally.summary(missing)


def _line_count(path: Path) -> int:
    """The file's line breaks (a bound on its rows, for progress), in 1 MB reads."""
    count = 0
    with open(path, "rb") as file:
        while chunk := file.read(2**20):
            count += chunk.count(b"\n")
    return count


class _CsvWriter:
    """Blocks of the answer CSV (passed-through columns, then PREDICTION_COLUMNS) written
    by DuckDB on a thread of its own, as they come, in order: a block is formatted while
    the next is predicted. A queue of QUEUED_BLOCKS bounds the memory."""

    def __init__(self, target: str | Path, columns: list[str]):
        import pyarrow as pa

        self.target = target
        self.schema = pa.schema(
            [(column, pa.string()) for column in columns] + list(_answer_schema())
        )
        self.blocks: queue.Queue = queue.Queue(QUEUED_BLOCKS)
        self.failure: BaseException | None = None
        self.ended = False  # the end of the blocks was taken
        self.thread = threading.Thread(target=self._copy, name="dpe-batch-writer", daemon=True)

    def __enter__(self) -> _CsvWriter:
        self.thread.start()
        return self

    def write(self, passed: list, answer: _Answer) -> None:
        import pyarrow as pa

        columns = [column.cast(pa.string()) for column in passed] + _arrow_columns(answer)
        self._put(pa.RecordBatch.from_arrays(columns, schema=self.schema))

    def _put(self, block) -> None:
        while self.thread.is_alive():
            try:
                return self.blocks.put(block, timeout=0.1)
            except queue.Full:
                continue
        raise self.failure or RuntimeError("the CSV writer stopped")

    def __exit__(self, kind, error, traceback) -> None:
        if self.thread.is_alive():
            self.blocks.put(None)  # the end: after a failure too, the thread stops
        self.thread.join()
        if error is not None or self.failure is not None:
            Path(self.target).unlink(missing_ok=True)  # no half-written answer
        if error is None and self.failure is not None:
            raise self.failure

    def _queued(self) -> Iterator:
        while (block := self.blocks.get()) is not None:
            yield block
        self.ended = True

    def _copy(self) -> None:
        import duckdb
        import pyarrow as pa

        try:
            reader = pa.RecordBatchReader.from_batches(self.schema, self._queued())
            with duckdb.connect() as con:
                con.execute(f"SET threads = {WRITER_THREADS}")
                con.register("answer", reader)
                con.execute(f"COPY answer TO {_sql_text(self.target)} (HEADER, DELIMITER ',')")
        except BaseException as failure:  # raised in the caller's thread
            self.failure = failure
            while not self.ended and self.blocks.get() is not None:  # let `write` go on
                pass


def _arrow_columns(answer: _Answer) -> list:
    """PREDICTION_COLUMNS of a block as Arrow, missing values null (DuckDB writes them as
    empty cells: NaN would be "nan", "" a quoted "")."""
    import pyarrow as pa

    missing = np.isnan(answer.proba)
    return [
        pa.array(answer.labels, pa.string()),
        *(pa.array(answer.proba[:, i], mask=missing[:, i]) for i in range(len(LABELS))),
        pa.array(answer.set_texts, pa.string(), mask=~answer.has_set),
        pa.array(answer.set_sizes, pa.int64(), mask=~answer.has_set),
        *(pa.array(getattr(answer, column), pa.string()) for column in TEXT_COLUMNS),
    ]


def _answer_schema():
    import pyarrow as pa

    types = {"set_size": pa.int64(), **dict.fromkeys(PROBA_COLUMNS, pa.float64())}
    return pa.schema([(name, types.get(name, pa.string())) for name in PREDICTION_COLUMNS])


def _normalised_labels(labels: np.ndarray) -> np.ndarray:
    """The file's labels trimmed and in capitals, as `_agreement` compares them (each
    distinct one once)."""

    def normalised(label):
        return label.strip().upper() if isinstance(label, str) else None

    found = distinct_rows(labels)
    if found is None:
        return np.array([normalised(label) for label in labels], dtype=object)
    distinct, rows = found
    return np.array([normalised(label) for label in distinct], dtype=object)[rows]


class _Tally:
    """`summary`'s counts, gathered a block at a time; the agreement with the file's own
    label when `labelled`."""

    def __init__(self, labelled: bool):
        self.labelled = labelled
        self.rows = self.rejected = self.warned = self.compared = self.same = 0
        self.sets = self.set_labels = 0

    def add(self, answer: _Answer, label: np.ndarray) -> None:
        self.rows += len(answer.labels)
        self.rejected += int(np.sum(answer.error != None))  # noqa: E711
        self.warned += int(np.sum(answer.warning != None))  # noqa: E711
        self.sets += int(answer.has_set.sum())
        self.set_labels += int(answer.set_sizes[answer.has_set].sum())
        if self.labelled:
            given = _normalised_labels(label)
            compared = np.isin(given, LABELS) & (answer.labels != None)  # noqa: E711
            self.compared += int(compared.sum())
            self.same += int((given[compared] == answer.labels[compared]).sum())

    def summary(self, missing: list[str]) -> BatchSummary:
        agreement = None
        if self.labelled:
            share = round(self.same / self.compared, 4) if self.compared else 0.0
            agreement = Agreement(share=share, n=self.compared)
        return BatchSummary(
            rows=self.rows,
            predicted=self.rows - self.rejected,
            rejected=self.rejected,
            warned=self.warned,
            missing_fields=missing,
            agreement=agreement,
            mean_set_size=round(self.set_labels / self.sets, 4) if self.sets else None,
        )


def _cleaned_blocks(
    table: CsvTable, passed: list[str]
) -> Iterator[
    tuple[dict[str, np.ndarray], dict[str, tuple[np.ndarray, np.ndarray]], np.ndarray, list]
]:
    """The CSV's rows, a block at a time, as `clean(..., by_field=True)` gives them: the
    record fields (as `_answer` takes them), each field's problems (codes, reasons), the
    label (objects), and the `passed` columns as Arrow, text cells a spreadsheet would run
    as formulas neutralised. Cleaned by DuckDB as it reads the file, in one query (planned
    once: ~0.3 s a time for clean's SQL); a malformed row is a DpeError naming its line. A
    predicted row's cleaned label is the file's (trimmed): it counts in `summary` as the
    file's own does."""
    import duckdb

    from core.data.csv_source import csv_error
    from core.data.warehouse import quote

    found = source_columns(checked_columns(table.columns))
    text = [
        f"{quote(found[official])} AS {quote(official)}"
        if official in found
        else f"NULL::VARCHAR AS {quote(official)}"
        for official, _, _ in COLUMNS
    ]
    carried = [f"_passed_{i}" for i in range(len(passed))]
    text += [f"{safe_sql(quote(c))} AS {alias}" for c, alias in zip(passed, carried, strict=True)]
    cleaned = clean_sql(f"(SELECT {', '.join(text)} FROM {table.scan})", True, carried)
    # Codes as text: an ENUM would come as an Arrow dictionary.
    problems = [f"_code_{name}::VARCHAR AS _code_{name}, _reason_{name}" for name in REJECT_FIELDS]
    kept = ", ".join([*RECORD_FIELDS, LABEL_FIELD, *problems, *carried])
    table.connection.execute(KEEP_ROW_ORDER)  # the output's rows in the input's order
    try:
        reader = table.connection.sql(f"SELECT {kept} FROM ({cleaned})").to_arrow_reader(
            CHUNK_VECTORS * 2048
        )
        for block in reader:
            yield (
                {
                    name: _numpy(block.column(name), RECORD_FIELDS[name].kind == "category")
                    for name in RECORD_FIELDS
                },
                {
                    name: (
                        _numpy(block.column(f"_code_{name}"), True),
                        _numpy(block.column(f"_reason_{name}"), True),
                    )
                    for name in REJECT_FIELDS
                },
                _numpy(block.column(LABEL_FIELD), True),
                [block.column(alias) for alias in carried],
            )
    except (duckdb.Error, OSError) as error:  # OSError: DuckDB's, through Arrow's reader
        raise csv_error(table.name, error, table.path, table.delimiter) from error


def _numpy(values, text: bool) -> np.ndarray:
    """An Arrow column as `_answer` takes it: text as objects, None where missing (one
    Python string per distinct value: a category column holds few); numbers as floats,
    NaN where missing."""
    if not text:
        return values.to_numpy(zero_copy_only=False).astype(float)
    import pyarrow.compute as pc

    encoded = pc.dictionary_encode(values)
    distinct = np.empty(len(encoded.dictionary) + 1, dtype=object)  # the last: None
    distinct[:-1] = encoded.dictionary.to_numpy(zero_copy_only=False)
    return distinct[encoded.indices.fill_null(len(encoded.dictionary)).to_numpy()]


def _object_column(series: pd.Series) -> np.ndarray:
    values = series.to_numpy(dtype=object, copy=True)
    values[series.isna().to_numpy()] = None
    return values


def _results(
    labels,
    proba,
    kept,
    messages,
    problems: dict[int, list[Problem]],
    warnings: dict[int, list[str]],
) -> list[Prediction]:
    results = []
    sets = conformal.set_labels(kept)
    rows = zip(labels, proba.tolist(), sets, messages, strict=True)
    for row, (label, numbers, labels_kept, message) in enumerate(rows):
        probabilities = None if label is None else dict(zip(LABELS, numbers, strict=True))
        results.append(
            Prediction(
                label=label,
                label_set=labels_kept or None,
                probabilities=probabilities,
                error=message,
                errors=problems.get(row, []),
                warnings=warnings.get(row, []),
            )
        )
    return results


def summary(predicted: pd.DataFrame) -> BatchSummary:
    """Counts of a `predict_frame` result, the model's fields it lacked, and how often the
    prediction agrees with the file's own label (when it has one)."""
    rejected = int((predicted["error"] != "").sum())
    return BatchSummary(
        rows=len(predicted),
        predicted=len(predicted) - rejected,
        rejected=rejected,
        warned=int((predicted["warning"] != "").sum()),
        missing_fields=list(predicted.attrs.get("missing_fields", [])),
        agreement=_agreement(predicted),
        mean_set_size=_mean(predicted["set_size"]),
    )


def _mean(values: pd.Series) -> float | None:
    found = values.dropna()
    return None if found.empty else round(float(found.astype(float).mean()), 4)


def _agreement(predicted: pd.DataFrame) -> Agreement | None:
    names = to_snake_case(list(predicted.columns))
    if LABEL_FIELD not in names:
        return None
    given = predicted.iloc[:, names.index(LABEL_FIELD)].astype("string").str.strip().str.upper()
    compared = given.isin(LABELS).fillna(False).to_numpy() & predicted["predicted_label"].notna()
    n = int(compared.sum())
    if not n:
        return Agreement(share=0.0, n=0)
    same = given[compared].to_numpy() == predicted.loc[compared, "predicted_label"].to_numpy()
    return Agreement(share=round(float(same.mean()), 4), n=n)


def write_csv(predicted: pd.DataFrame, path: str | Path) -> None:
    """A `predict_frame` result as CSV: UTF-8, `,`-separated, whatever the input was; floats
    as their shortest exact text; empty cells where nothing was predicted. DuckDB writes it,
    in C++ and threads: pandas' `to_csv` takes 3× as long on 100,000 ADEME rows."""
    import duckdb  # imported here: loaded by the first batch, not at API start up

    passed_through = [c for c in predicted.columns if c not in PREDICTION_COLUMNS]
    safe = safe_text_columns(predicted, passed_through).rename(columns=safe_cell)
    with duckdb.connect() as con:
        con.register("predicted", _csv_ready(safe))
        con.execute(f"COPY predicted TO {_sql_text(path)} (HEADER, DELIMITER ',')")


def _csv_ready(predicted: pd.DataFrame) -> pd.DataFrame:
    """Missing values as DuckDB writes them, empty: NaN would be "nan", "" a quoted ""."""
    import pandas as pd

    out = predicted.copy(deep=False)
    for column in PROBA_COLUMNS:
        out[column] = pd.array(out[column].to_numpy(dtype=float), dtype="Float64")
    out["set_size"] = pd.array(out["set_size"], dtype="Int64")
    for column in ("label_set", *TEXT_COLUMNS):
        out[column] = out[column].replace("", None)
    return out


def _sql_text(path: str | Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def to_csv_bytes(predicted: pd.DataFrame) -> bytes:
    """`write_csv`, as bytes."""
    with tempfiles.temporary_dir("predict") as tmp:
        path = Path(tmp) / "predicted.csv"
        write_csv(predicted, path)
        return path.read_bytes()
