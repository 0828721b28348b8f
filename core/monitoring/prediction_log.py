"""The prediction log's writer: every prediction (record fields, label, probabilities, model
version, source, client, request id, UTC time) appended to the log in the object store (its
layout, reading and compaction: `core.monitoring.prediction_store`).

The API's response path only puts on a queue; a background thread writes a part file per
batch. The thread also, at most hourly (`MAINTAIN_EVERY_S`), compacts and prunes the log
(`core.monitoring.prediction_store.maintain`). Each API client logs at most
DPE_LOG_CLIENT_QUOTA predictions an hour (`ClientQuota`): one client cannot flood the log.
"""

import atexit
import logging
import queue
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from operator import methodcaller

import numpy as np
import pandas as pd
import pyarrow as pa

from core.config import Settings
from core.data.schema import LABELS, RECORD_FIELDS
from core.monitoring import prediction_store
from core.monitoring.prediction_store import LOG_SCHEMA, PROBA_COLUMNS, SOURCES
from core.storage import Store

log = logging.getLogger(__name__)

MAINTAIN_EVERY_S = 3600.0  # how often a logger compacts and prunes the log
QUOTA_PERIOD_S = 3600.0
MAX_QUOTA_CLIENTS = 100_000  # clients counted in a period; beyond, new ones are not logged
_STOP = object()


class ClientQuota:
    """Rows each client may still log in the current hour (DPE_LOG_CLIENT_QUOTA; 0: no
    quota). Rows without a client (the workbench, the CLI) are not counted."""

    def __init__(self, per_hour: int, clock=time.monotonic):
        self.per_hour = per_hour
        self.clock = clock
        self._period: int | None = None
        self._used: dict[str, int] = {}
        self._lock = threading.Lock()

    def take(self, client: str | None, rows: int) -> int:
        """How many of `rows` the client may log now (they are counted as logged)."""
        if client is None or not self.per_hour:
            return rows
        with self._lock:
            period = int(self.clock() // QUOTA_PERIOD_S)
            if period != self._period:
                self._period, self._used = period, {}
            if client not in self._used and len(self._used) >= MAX_QUOTA_CLIENTS:
                return 0
            used = self._used.get(client, 0)
            allowed = max(0, min(rows, self.per_hour - used))
            self._used[client] = used + allowed
        if allowed < rows and used < self.per_hour:  # said once a period, when it is reached
            log.warning(
                "prediction log: %s reached its quota of %d predictions this hour "
                "(DPE_LOG_CLIENT_QUOTA): its next ones are not logged",
                client,
                self.per_hour,
            )
        return allowed


class PredictionLogger:
    """Logs predictions off the caller's path: `log` puts on a queue, a thread writes.

    The thread writes a part file when `flush_rows` records are waiting or `flush_s` seconds
    after the first one came, on `flush()`, and on `close()` (also run at interpreter exit).
    """

    def __init__(
        self,
        settings: Settings,
        flush_rows: int | None = None,
        flush_s: float | None = None,
        max_queue: int = 100_000,
    ):
        self.settings = settings
        self.store: Store | None = None  # opened by the writer thread: S3 clients take time
        self.replica = prediction_store.replica_id()
        self.flush_rows = flush_rows or settings.log_flush_rows
        self.flush_s = flush_s if flush_s is not None else settings.log_flush_s
        self.dropped = 0
        self.over_quota = 0  # predictions not logged: their client was past its quota
        self.quota = ClientQuota(settings.log_client_quota)
        self.retention_days = settings.log_retention_days
        self._maintained_at: float | None = None  # never yet: the first write maintains
        self._queue: queue.Queue = queue.Queue(maxsize=max_queue)
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def log(
        self,
        records,
        results,
        model_version: str | None,
        source: str,
        client: str | None = None,
        request_id: str | None = None,
    ) -> None:
        """Queue predictions: `records` (record fields: a list of dicts, a DataFrame or a
        mapping of columns) and `results` (one dict each: label, probabilities {A..G}, error),
        in the same order, asked by `client` in request `request_id` (both optional). Past
        the client's quota only the first rows are logged, or none.
        Fits `core.serving.champion.PredictionSink`."""
        if source not in SOURCES:
            raise ValueError(f"source must be one of {SOURCES}, not {source!r}")
        allowed = self.quota.take(client, len(results))
        if allowed < len(results):
            self.over_quota += len(results) - allowed
            if not allowed:
                return
            records, results = _head(records, allowed), results[:allowed]
        entry = (records, results, model_version, source, datetime.now(UTC), client, request_id)
        try:
            self._queue.put_nowait(entry)
        except queue.Full:
            # The caller must never wait on its log: past the bound, predictions go unlogged.
            self.dropped += len(results)
            log.warning("prediction log queue full: %d predictions not logged", self.dropped)

    def flush(self, timeout_s: float = 60) -> None:
        """Write every prediction logged so far; returns once it is on disk."""
        if self._closed:
            return  # close() wrote everything
        done = threading.Event()
        self._queue.put(done)
        done.wait(timeout_s)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)
        self._thread.join()
        atexit.unregister(self.close)

    def _run(self) -> None:
        pending: list = []
        rows = 0
        deadline: float | None = None
        while True:
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                item = self._queue.get(timeout=timeout)
            except queue.Empty:
                item = None  # flush_s elapsed since the first pending entry
            if isinstance(item, tuple):
                pending.append(item)
                rows += len(item[1])
                deadline = deadline or time.monotonic() + self.flush_s
                if rows < self.flush_rows:
                    continue
            self._write(pending)
            pending, rows, deadline = [], 0, None
            if isinstance(item, threading.Event):
                item.set()
            if item is _STOP:
                return

    def _write(self, entries: list) -> None:
        if not entries:
            return
        try:
            self.store = self.store or Store(self.settings)
            prediction_store.write_part(self.store, log_table(entries), self.replica)
        except Exception:
            # A failed write must not stop the thread: later predictions are still logged.
            self.dropped += sum(len(entry[1]) for entry in entries)
            log.exception("could not write the prediction log")
        if self.store is not None:
            self._maintain(self.store)

    def _maintain(self, store: Store) -> None:
        """Compact and prune the log, at most every MAINTAIN_EVERY_S, on the writer thread."""
        now = time.monotonic()
        if self._maintained_at is not None and now - self._maintained_at < MAINTAIN_EVERY_S:
            return
        self._maintained_at = now
        try:
            prediction_store.maintain(store, self.retention_days, owner=self.replica)
        except Exception:  # the log keeps being written even if it cannot be tidied
            log.exception("could not compact the prediction log")


BULK_ROWS = 64  # an entry this large, its records as arrays, is converted array by array


def log_table(entries: list) -> pa.Table:
    """Queued (records, results, model_version, source, time, client, request_id) entries as
    one Arrow table, in order.

    Built from plain lists, not a DataFrame per entry: the API logs one record per request,
    and per-entry pandas overhead would let the queue outgrow the writer. A large entry whose
    records are arrays (a batch from the API or the CLI) is converted array by array instead:
    this runs beside the requests, in the same interpreter, and value by value it would hold
    it ~3 ms per 1,000 records.
    """
    tables: list[pa.Table] = []
    rows: list[tuple] = []
    for entry in entries:
        if _is_bulk(entry):
            if rows:
                tables.append(_rows_table(rows))
                rows = []
            tables.append(_bulk_table(entry))
        else:
            rows.append(entry)
    if rows or not tables:
        tables.append(_rows_table(rows))
    return tables[0] if len(tables) == 1 else pa.concat_tables(tables)


def _is_bulk(entry: tuple) -> bool:
    records, results = entry[:2]
    return (
        len(results) >= BULK_ROWS
        and isinstance(records, Mapping)
        and all(isinstance(values, np.ndarray) for values in records.values())
    )


def _rows_table(entries: list) -> pa.Table:
    """`log_table` of entries taken value by value."""
    columns: dict[str, list] = {name: [] for name in LOG_SCHEMA.names}
    for records, results, model_version, source, logged_at, client, request_id in entries:
        count = len(results)
        columns["time"] += [logged_at] * count
        columns["source"] += [source] * count
        columns["client"] += [client] * count
        columns["request_id"] += [request_id] * count
        columns["model_version"] += [None if model_version is None else str(model_version)] * count
        for result in results:
            columns["label"].append(result.get("label"))
            columns["error"].append(result.get("error"))
            probabilities = result.get("probabilities") or {}
            for label, column in zip(LABELS, PROBA_COLUMNS, strict=True):
                columns[column].append(_number(probabilities.get(label)))
        for name, values in _record_columns(records, count).items():
            columns[name] += values
    return pa.Table.from_pydict(columns, schema=LOG_SCHEMA)


def _bulk_table(entry: tuple) -> pa.Table:
    """`log_table` of one entry whose records are arrays: each column in one conversion,
    NaN as null (what `_rows_table` makes of it); values of other types as it takes them."""
    records, results, model_version, source, logged_at, client, request_id = entry
    count = len(results)
    by_label = [result.get("probabilities") or {} for result in results]
    version = None if model_version is None else str(model_version)
    # The values the entry's rows share, each repeated in one call (not a list of datetimes).
    shared = {"time": logged_at, "source": source, "client": client, "request_id": request_id}
    columns: dict = {
        name: pa.repeat(pa.scalar(value, LOG_SCHEMA.field(name).type), count)
        for name, value in {**shared, "model_version": version}.items()
    }
    columns |= {
        "label": [result.get("label") for result in results],
        "error": [result.get("error") for result in results],
    }
    for label, column in zip(LABELS, PROBA_COLUMNS, strict=True):
        columns[column] = _floats(list(map(methodcaller("get", label), by_label)))
    for name, spec in RECORD_FIELDS.items():
        values = records.get(name)
        if values is None:
            columns[name] = [None] * count
        elif spec.kind == "category":
            columns[name] = _texts(values)
        else:
            columns[name] = values if values.dtype == np.float64 else _floats(values.tolist())
    arrays = [
        values if isinstance(values, pa.Array) else pa.array(values, field.type, from_pandas=True)
        for values, field in zip(map(columns.get, LOG_SCHEMA.names), LOG_SCHEMA, strict=True)
    ]
    return pa.Table.from_arrays(arrays, schema=LOG_SCHEMA)


def _floats(values: list) -> list:
    """Floats and None as they are (NaN is made null); other values as `_number` reads them."""
    if set(map(type, values)) <= _FLOATS_OR_NONE:
        return values
    return [_number(value) for value in values]


def _texts(values: np.ndarray):
    """Text and None as they are; other values as `_text` reads them."""
    if set(map(type, values)) <= _TEXT_OR_NONE:
        return values
    return [_text(value) for value in values.tolist()]


_FLOATS_OR_NONE = frozenset({float, type(None)})
_TEXT_OR_NONE = frozenset({str, type(None)})


def _record_columns(records, count: int) -> dict[str, list]:
    """Each record field (by snake_case name) as a list of clean values, from a list of
    dicts, a DataFrame, or a mapping of columns (name -> sequence); absent fields are None."""
    if isinstance(records, pd.DataFrame):
        # One conversion of the whole frame: pandas' per-column access costs far more than
        # the data when the frame holds one row, as it does for each API request.
        records = dict(zip(records.columns, records.to_numpy(object).T, strict=True))
    if isinstance(records, Mapping):
        missing = [None] * count
        return {
            name: [convert(value) for value in _plain(records.get(name, missing))]
            for name, convert in _CONVERTERS.items()
        }
    return {
        name: [convert(record.get(name)) for record in records]
        for name, convert in _CONVERTERS.items()
    }


def _head(records, rows: int):
    """The first `rows` records of a list, a DataFrame or a mapping of columns."""
    if isinstance(records, pd.DataFrame):
        return records.iloc[:rows]
    if isinstance(records, Mapping):
        return {name: values[:rows] for name, values in records.items()}
    return records[:rows]


def _plain(values):
    """An array's values as Python objects (a float array's as floats), in one call."""
    return values.tolist() if isinstance(values, np.ndarray) else values


def _text(value) -> str | None:
    if value is None or type(value) is str:  # what predictions give: checked first, cheaply
        return value
    return None if pd.isna(value) else str(value)


def _number(value) -> float | None:
    """A float, or None for a missing value or text that is not a number."""
    if type(value) is float:  # what predictions give: checked first, cheaply
        return None if value != value else value  # NaN is missing
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if np.isnan(number) else number


_CONVERTERS = {
    name: _text if spec.kind == "category" else _number for name, spec in RECORD_FIELDS.items()
}
