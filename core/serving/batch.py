"""Batch prediction: a whole frame or CSV file through the champion, vectorised.

`predict_frame(champion, frame)` keeps every row: the input columns, then
`predicted_label`, `proba_A`..`proba_G`, `label_set` (the labels kept at `DPE_SET_COVERAGE`,
in A..G order joined by `|`, e.g. `C|D`; empty when the champion has no calibration) and
`set_size`, `error` (why the row was not predicted: messages joined by `; `), `error_code`
(their codes, `core.data.validation.ERROR_CODES`, joined by `|` in the same order) and
`warning` (it was, setting aside a category the model never saw). `predict_csv` does the
same from a CSV to a CSV (UTF-8, `,`), reading `CHUNK_VECTORS` blocks of rows at a time
through DuckDB, which also copies the columns a prediction does not read. Text cells a
spreadsheet would run as formulas, column names
included, are neutralised in what is written (`core.data.csv_cells`).
"""

from __future__ import annotations

from collections.abc import Iterator
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
CHUNK_VECTORS = 10  # DuckDB vectors (2,048 rows each) read from a CSV at a time


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

    columns = {
        name: _object_column(cleaned[name])
        for name, spec in RECORD_FIELDS.items()
        if spec.kind == "category"
    }
    floats = {
        name: cleaned[name].to_numpy(dtype=float, na_value=np.nan)
        for name, spec in RECORD_FIELDS.items()
        if spec.kind != "category"
    }
    errors, warnings = RowErrors(len(cleaned)), RowWarnings(len(cleaned))
    for name in REJECT_FIELDS:
        errors.add_found(
            name,
            cleaned[f"_code_{name}"].to_numpy(dtype=object),
            cleaned[f"_reason_{name}"].to_numpy(dtype=object),
        )
    champion.check(columns, floats, errors, warnings, number_checks={})  # clean() did the schema's
    messages, codes, warned = errors.messages(), errors.codes(), warnings.joined()
    valid = np.flatnonzero(pd.isna(messages))
    inputs = {**columns, **floats}
    proba = np.full((len(cleaned), len(LABELS)), np.nan)
    for start in range(0, len(valid), CHUNK_ROWS):
        rows = valid[start : start + CHUNK_ROWS]
        proba[rows] = champion.columns_proba({name: inputs[name][rows] for name in RECORD_FIELDS})
        progress((start + len(rows)) / len(valid), f"predicted {start + len(rows):,} rows")
    labels = np.full(len(cleaned), None, dtype=object)
    labels[valid] = champion.labels_of(proba[valid])
    kept = np.zeros((len(cleaned), len(LABELS)), dtype=bool)
    found = champion.kept_labels(proba[valid], labels[valid])
    if found is not None:
        kept[valid] = found
    result = pd.DataFrame(proba, columns=list(PROBA_COLUMNS))
    result.insert(0, "predicted_label", labels)
    result["label_set"] = np.where(kept.any(axis=1), conformal.set_texts(kept), "")
    result["set_size"] = pd.array(np.where(kept.any(axis=1), kept.sum(axis=1), None), "Int64")
    result["error"] = np.where(pd.isna(messages), "", messages)
    result["error_code"] = np.where(pd.isna(codes), "", codes)
    result["warning"] = np.where(pd.isna(warned), "", warned)
    champion.hand_to_sink(
        inputs,
        lambda: _results(labels, proba, kept, messages, errors.rows, warnings.rows),
        source,
        client,
        request_id,
    )
    return result


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
    `write_csv` writes it; returns its `summary`. Only the columns a prediction reads
    become pandas columns, a block of rows at a time: DuckDB copies the others from the
    input file to the output."""
    import pandas as pd

    from core.data.csv_source import csv_table  # DuckDB: imported when a batch comes
    from core.data.warehouse import quote

    with csv_table(source, name) as table:
        missing = missing_fields(champion, table.columns)
        labels = [LABEL_FIELD] if LABEL_FIELD in to_snake_case(table.columns) else []
        [(total,)] = table.fetch(f"SELECT count(*) FROM {table.scan}", "fetchall")
        parts, done = [], 0
        for cleaned in _cleaned_chunks(table):
            predictions = _predicted(
                champion, cleaned, source_tag, client=client, request_id=request_id
            )
            parts.append(pd.concat([cleaned[labels], predictions], axis=1))
            done += len(cleaned)
            progress(done / max(total, 1), f"predicted {done:,} of {total:,} rows")
        predicted = _joined(parts, labels)
        predicted.attrs["missing_fields"] = missing
        table.connection.register("predictions", _csv_ready(predicted[list(PREDICTION_COLUMNS)]))
        kept = [
            f"{safe_sql(quote(c))} AS {quote(safe_cell(c))}"
            for c in table.columns
            if c not in PREDICTION_COLUMNS
        ]
        table.query(
            f"COPY (SELECT {', '.join([*kept, 'predictions.*'])} FROM {table.scan} "
            f"POSITIONAL JOIN predictions) TO {_sql_text(target)} (HEADER, DELIMITER ',')"
        )
    return summary(predicted)


def _cleaned_chunks(table: CsvTable) -> Iterator[pd.DataFrame]:
    """The CSV's rows as `clean(..., by_field=True)` gives them (the record fields, the label,
    each field's problem),
    CHUNK_VECTORS blocks of rows at a time, index 0..n-1 in each: cleaned by DuckDB as it
    reads the file, in one query (planned once: ~0.3 s a time for clean's SQL), without a
    pandas frame of text in between; a malformed row is a DpeError naming its line. A
    predicted row's cleaned label is the file's (trimmed): it counts in `summary` as the
    file's own does."""
    import duckdb

    from core.data.csv_source import csv_error
    from core.data.warehouse import quote

    found = source_columns(checked_columns(table.columns))
    text = ", ".join(
        f"{quote(found[official])} AS {quote(official)}"
        if official in found
        else f"NULL::VARCHAR AS {quote(official)}"
        for official, _, _ in COLUMNS
    )
    cleaned = clean_sql(f"(SELECT {text} FROM {table.scan})", by_field=True)
    problems = [f"{kind}_{name}" for name in REJECT_FIELDS for kind in ("_code", "_reason")]
    kept = ", ".join([*RECORD_FIELDS, LABEL_FIELD, *problems])
    table.connection.execute(KEEP_ROW_ORDER)  # predictions join the file by position
    try:
        reader = table.connection.execute(f"SELECT {kept} FROM ({cleaned})")
        while not (chunk := reader.fetch_df_chunk(CHUNK_VECTORS)).empty:
            yield chunk
    except duckdb.Error as error:
        raise csv_error(table.name, error, table.path, table.delimiter) from error


def _joined(parts: list[pd.DataFrame], labels: list[str]) -> pd.DataFrame:
    import pandas as pd

    if parts:
        return pd.concat(parts, ignore_index=True)
    return pd.DataFrame(columns=[*labels, *PREDICTION_COLUMNS])


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
