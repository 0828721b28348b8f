"""The pass's extract step against a local data-fair API (no MLflow: extract only ingests):
the watermark never passes today, and a day with more records than the limit is fetched
whole (issue 24: item 5 and a low)."""

from urllib.parse import unquote

import pandas as pd

from core.data import warehouse
from core.lifecycle import pipeline
from tests.support.sources import datafair_server
from tooling.synth import generate_records, to_api_pages

RECEPTION = "Date_réception_DPE"


def api_records(rows: int, seed: int, received: str | list[str]) -> list[dict]:
    """Generated records as the API serves them, received on `received` (a day, or one
    per record)."""
    frame = generate_records(rows, seed=seed)
    frame["N°DPE"] = [f"S{seed}-{n:04d}" for n in range(rows)]
    frame[RECEPTION] = received
    return [
        {key: value for key, value in record.items() if key != "_i"}
        for page in to_api_pages(frame, page_size=rows)
        for record in page["results"]
    ]


def extract(settings, url: str) -> pipeline.PassState:
    return pipeline.extract(settings, pipeline.start(settings, url))


def count(settings, where: str = "true") -> int:
    with warehouse.connect(settings) as con:
        return con.execute(f"SELECT count(*) FROM dpe WHERE {where}").fetchall()[0][0]


def test_a_record_dated_2099_neither_enters_training_nor_stalls_the_watermark(settings):
    days = pd.date_range("2024-01-01", periods=300).strftime("%Y-%m-%d").tolist()
    records = api_records(300, seed=1, received=days)
    records[0][RECEPTION] = "2099-12-31"
    with datafair_server(records) as server:
        first = extract(settings, server.url)
        assert first.decision is None and count(settings) == 300
        assert count(settings, "reject_reason LIKE '%is in the future%'") == 1
        assert pipeline.watermark(settings) == days[-1]  # not 2099-12-31
        # 150 newer records arrive: the next extract asks from the watermark and gets them.
        server.records = records + api_records(150, seed=2, received="2025-06-01")
        asked = len(server.requests)
        second = extract(settings, server.url)
    assert f"{RECEPTION}_gte={days[-1]}" in unquote(server.requests[asked])
    assert second.decision is None and count(settings) == 450
    assert pipeline.watermark(settings) == "2025-06-01"


def test_more_records_on_one_day_than_the_limit_are_all_fetched(settings):
    settings = settings.model_copy(update={"ingest_limit": 500})
    day = api_records(700, seed=3, received="2024-03-01")
    with datafair_server(day) as server:
        extract(settings, server.url)
        assert count(settings) == 700  # not 500, of which the next passes would ask again
        server.records = day + api_records(100, seed=4, received="2024-03-02")
        extract(settings, server.url)
    assert count(settings) == 800
