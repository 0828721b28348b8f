"""The prediction log as stored: reading an empty log, compaction and retention, the
maintenance lease, parts written before a column existed."""

import json
import time
from datetime import UTC, datetime, timedelta

import pandas as pd

from core.monitoring import prediction_store
from core.monitoring.prediction_log import log_table
from core.monitoring.prediction_store import day_parts, maintain, parquet_bytes, read_predictions
from core.storage import Store

RESULT = {"label": "C", "probabilities": {label: 1 / 7 for label in "ABCDEFG"}, "error": None}
RECORD = {"secteur_activite": "W : Administrations, banques, bureaux", "surface_utile": 250.0}


def day_counts(settings) -> dict[str, int]:
    """Part files per day folder."""
    return {day: len(files) for day, files in day_parts(Store(settings)).items()}


def test_read_predictions_with_no_log_is_empty(settings):
    frame = read_predictions(settings)
    assert frame.empty and {"time", "label", "proba_G", "secteur_activite"} <= set(frame)


def day_with_parts(settings, day: str, n: int, source: str = "api") -> None:
    """`n` part files of one prediction each in the folder of `day` (YYYY-MM-DD)."""
    store = Store(settings)
    for i in range(n):
        moment = datetime.fromisoformat(f"{day}T08:00:00+00:00") + timedelta(minutes=i)
        table = log_table([([RECORD], [RESULT], "3", source, moment, None, None)])
        path = f"predictions/date={day}/part-{day}-{i:04d}.parquet"
        store.write_bytes(path, parquet_bytes(table))


def test_past_days_are_compacted_and_old_days_pruned(settings):
    today = datetime(2026, 12, 6, tzinfo=UTC).date()
    for day, n in (("2026-08-01", 3), ("2026-12-01", 40), ("2026-12-05", 2), ("2026-12-06", 2)):
        day_with_parts(settings, day, n)
    before = read_predictions(settings)
    result = maintain(Store(settings), 90, today)
    assert result == {"skipped": False, "pruned_days": 1, "compacted_days": 1}
    # Yesterday and today may still get a late part: left as they are.
    counts = day_counts(settings)
    assert counts == {"date=2026-12-01": 1, "date=2026-12-05": 2, "date=2026-12-06": 2}
    after = read_predictions(settings)
    kept = before[before["time"] >= datetime(2026, 9, 7, tzinfo=UTC)].reset_index(drop=True)
    pd.testing.assert_frame_equal(after, kept)
    assert maintain(Store(settings), 90, today) == {
        "skipped": False,
        "pruned_days": 0,
        "compacted_days": 0,
    }


def test_maintenance_waits_for_no_one_and_a_dead_lease_expires(settings):
    store = Store(settings)
    lease = {"owner": "another-replica", "until": time.time() + 60}
    store.write_bytes(prediction_store.LEASE, json.dumps(lease).encode())
    assert maintain(store, 90) == {"skipped": True}
    lease["until"] = time.time() - 1  # its holder died: the lease is taken over
    store.write_bytes(prediction_store.LEASE, json.dumps(lease).encode())
    assert maintain(store, 90)["skipped"] is False
    assert not store.exists(prediction_store.LEASE)  # released


def test_parts_left_by_an_interrupted_compaction_are_not_counted_twice(settings):
    today = datetime(2026, 12, 6, tzinfo=UTC).date()
    day_with_parts(settings, "2026-12-01", 3)
    store = Store(settings)
    parts = day_parts(store)["date=2026-12-01"]
    prediction_store.compact(store, "date=2026-12-01", parts)
    # As if the process died after writing the merged file, before deleting its parts:
    for path in parts:
        store.write_bytes(path, b"")  # the content does not matter: they are deleted unread
    maintain(store, 90, today)
    assert day_counts(settings) == {"date=2026-12-01": 1}
    assert len(read_predictions(settings)) == 3


def test_parts_written_before_the_client_column_still_read(settings):
    table = log_table([([RECORD], [RESULT], "3", "api", datetime.now(UTC), None, None)])
    older = table.drop_columns(["client", "request_id"])
    Store(settings).write_bytes(
        f"predictions/date={datetime.now(UTC):%Y-%m-%d}/part-old.parquet",
        parquet_bytes(older),
    )
    frame = read_predictions(settings)
    assert len(frame) == 1 and frame["client"].isna().all()
    assert read_predictions(settings, client="host:x").empty
