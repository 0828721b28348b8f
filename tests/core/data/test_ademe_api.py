"""The ADEME API client against misbehaving servers on 127.0.0.1 (issue 24: items 10 and
the lows): a page that drips in, a page too big, `next` cursors that loop or lead to another
server, JSON nested too deeply, and more records on one day than the limit."""

import json
import time

import pytest

from core.data.ademe_api import fetch_api
from core.data.ingest import ingest
from core.errors import InvalidInput, Unavailable
from tests.support.cli import cli_env, run_cli
from tests.support.sources import datafair_server, scripted_server

PAGE = json.dumps({"total": 2, "next": None, "results": [{"N°DPE": "A"}, {"N°DPE": "B"}]})


@pytest.fixture
def api_settings(settings):
    """Quick retries and a 1 s read timeout: each test sets the deadline it is about."""
    return settings.model_copy(
        update={"http_timeout_s": 1.0, "http_retries": 0, "http_backoff_s": 0.01}
    )


def drip(body: str, every_s: float):
    """A server answering `body` one byte every `every_s` seconds (under the read timeout)."""

    def respond(handler):
        data = body.encode()
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        for byte in data:
            handler.wfile.write(bytes([byte]))
            handler.wfile.flush()
            time.sleep(every_s)

    return respond


def test_a_page_dripping_in_is_given_up_at_its_deadline(api_settings):
    # 0.05 s a byte: the page would be whole after ~4 s; each read waits far less than 1 s.
    settings = api_settings.model_copy(update={"http_page_deadline_s": 1.0})
    too_slow = pytest.raises(Unavailable, match="too slow")
    with scripted_server(drip(PAGE, 0.05)) as server, too_slow as error:
        fetch_api(server.url, 10, settings)
    assert "1 attempt" in str(error.value)


def test_the_whole_fetch_has_a_deadline_retries_included(api_settings):
    settings = api_settings.model_copy(
        update={"http_page_deadline_s": 0.5, "http_fetch_deadline_s": 1.5, "http_retries": 50}
    )
    too_long = pytest.raises(Unavailable, match="DPE_HTTP_FETCH_DEADLINE_S")
    with scripted_server(drip(PAGE, 0.05)) as server, too_long:
        fetch_api(server.url, 10, settings)
    assert 1 < len(server.requests) < 50  # retried, but not 50 times


def big_page(declare_length: bool):
    def respond(handler):
        handler.send_response(200)
        if declare_length:
            handler.send_header("Content-Length", str(50 * 1024 * 1024))
        handler.end_headers()
        handler.wfile.write(b'{"results": [' + b'{"N\\u00b0DPE": "x"},' * 200_000)

    return respond


@pytest.mark.parametrize("declare_length", [True, False])
def test_a_page_over_the_size_cap_is_refused_before_parsing(api_settings, declare_length):
    settings = api_settings.model_copy(update={"http_max_page_mb": 1.0})
    too_big = pytest.raises(InvalidInput, match=r"larger than 1 MB \(DPE_HTTP_MAX_PAGE_MB\)")
    with scripted_server(big_page(declare_length)) as server, too_big:
        fetch_api(server.url, 10, settings)


def pages_pointing_to(next_of):
    """Pages of one record each; `next_of(server, path)` is the `next` of each page."""

    def respond(handler):
        body = json.dumps(
            {"next": next_of(handler.server, handler.path), "results": [{"N°DPE": handler.path}]}
        ).encode()
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    return respond


def test_a_next_cursor_loop_is_detected(api_settings):
    def next_of(server, path):  # page 1 leads back to the first page
        return f"{server.url}?page=1" if "page=1" not in path else f"{server.url}?size=100"

    loop = pytest.raises(InvalidInput, match="back to a page already fetched")
    with scripted_server(pages_pointing_to(next_of)) as server, loop:
        fetch_api(server.url, 100, api_settings)
    assert len(server.requests) == 2


def test_a_next_cursor_to_another_server_is_not_followed(api_settings):
    refused = pytest.raises(InvalidInput, match="another server")
    with scripted_server(pages_pointing_to(lambda server, path: None)) as elsewhere:
        pointing = pages_pointing_to(lambda server, path: elsewhere.url)
        with scripted_server(pointing) as server, refused:
            fetch_api(server.url, 100, api_settings)
    assert elsewhere.requests == []


def test_deeply_nested_json_is_one_clear_error_in_ingest_and_cli(api_settings, tmp_path):
    nested = '{"results": [' + "[" * 100_000 + "]" * 100_000 + "]}"

    def respond(handler):
        handler.send_response(200)
        handler.end_headers()
        handler.wfile.write(nested.encode())

    with scripted_server(respond) as server, pytest.raises(InvalidInput, match="too deeply"):
        ingest(api_settings, server.url)
    page = tmp_path / "nested.json"
    page.write_text(nested)
    code, payload, stderr = run_cli("ingest", "--source", str(page), env=cli_env(api_settings))
    assert code == 2 and payload["error"]["code"] == "invalid_input"
    assert stderr.strip().splitlines() == [
        f"error: {page} is nested too deeply to be an ADEME API page"
    ]


def received(day: str, count: int, prefix: str) -> list[dict]:
    return [{"N°DPE": f"{prefix}{n:03d}", "Date_réception_DPE": day} for n in range(count)]


def test_a_sorted_fetch_never_stops_inside_a_day_and_always_gets_past_the_first(api_settings):
    """More records received on one day than the limit: a fetch cut inside that day would
    ask for it again next time and never see the 200 records after the cut (issue 24)."""
    first = received("2024-03-01", 700, "D")
    later = [received(f"2024-03-{day:02d}", 100, f"E{day}-") for day in range(2, 12)]
    with datafair_server(first + sum(later, [])) as server:
        url = f"{server.url}?sort=Date_réception_DPE"
        records = fetch_api(url, 500, api_settings)
        # The first day does not count (the previous fetch may hold it); 500 after it.
        assert [r["N°DPE"] for r in records] == [r["N°DPE"] for r in first + sum(later[:5], [])]
        again = fetch_api(f"{url}&Date_réception_DPE_gte=2024-03-06", 500, api_settings)
        assert [r["N°DPE"] for r in again] == [r["N°DPE"] for r in sum(later[4:], [])]
        assert len(fetch_api(server.url, 500, api_settings)) == 500  # unsorted: the limit
