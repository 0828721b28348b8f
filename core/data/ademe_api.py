"""The ADEME data-fair API client: records fetched page by page, following `next` cursors.

429, 5xx and network failures are retried with exponential backoff (a server's Retry-After
is honoured up to MAX_RETRY_AFTER_S), then are `Unavailable` (a later try may work). A host
name that does not resolve, or no route to it, is not retried: the machine is offline or
the URL is wrong, and the message says to check the source or to ingest a CSV export
instead. A name that does not resolve is `InvalidInput`: trying again will not help.

What a misbehaving server cannot do: hold a fetch forever (a page gets
`DPE_HTTP_PAGE_DEADLINE_S` in all, however slowly its bytes drip in, and the whole fetch
`DPE_HTTP_FETCH_DEADLINE_S`), exhaust memory (a page over `DPE_HTTP_MAX_PAGE_MB` is refused
before it is parsed), send the client elsewhere (a `next` cursor to another host is
refused) or round in circles (a `next` cursor seen before is refused).
"""

import errno
import logging
import time

import httpx

from core.config import Settings
from core.data.sources import page_records, parse_json
from core.errors import DpeError, InvalidInput, Unavailable, unknown_host
from core.progress import Progress, no_progress

log = logging.getLogger(__name__)

API_PAGE_SIZE = 1000  # records per API page; the shared pages were pulled with 100 to 500
MAX_RETRY_AFTER_S = 60.0  # never wait longer than this on a server's Retry-After
ADEME_DATASET_PAGE = "https://data.ademe.fr/datasets/dpe-v2-tertiaire-2"


class _TooSlow(Exception):
    """A page's deadline passed while its bytes were still coming (retried like a timeout)."""


def _retry_delay(response: httpx.Response | None, attempt: int, settings: Settings) -> float:
    retry_after = response.headers.get("Retry-After", "") if response is not None else ""
    if retry_after.replace(".", "", 1).isdigit():
        return min(float(retry_after), MAX_RETRY_AFTER_S)
    return settings.http_backoff_s * 2**attempt


def _offline(error: BaseException, host: str) -> DpeError | None:
    """The error of a network failure retrying here cannot help, said for a user: a name
    that does not resolve (check the source: InvalidInput), no route (this machine is
    offline: Unavailable, a later run may work); None for a failure worth retrying."""
    if unknown_host(error):
        why = (
            f"the server name {host} is unknown to this machine: check the source URL "
            "(--source, DPE_SOURCE) and the network connection"
        )
        return InvalidInput(_offline_message(why))
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, OSError) and cause.errno == errno.ENETUNREACH:
            return Unavailable(
                _offline_message("this machine has no network route to it (offline?)")
            )
        cause = cause.__cause__ or cause.__context__
    return None


def _offline_message(why: str) -> str:
    return (
        f"cannot reach the ADEME API: {why}. To work offline, ingest an ADEME CSV export "
        "instead: `DPE_SOURCE=path/to/export.csv make run`, or upload it on the Home page. "
        f"The export is downloaded from {ADEME_DATASET_PAGE}"
    )


def _network_problem(error: httpx.TransportError | _TooSlow) -> str:
    if isinstance(error, _TooSlow):
        return "too slow: the page was not complete in time"
    if isinstance(error, httpx.TimeoutException):
        return "no answer in time"
    if isinstance(error, httpx.ConnectError):
        return "the connection failed"
    return "the connection broke off"


def _read_body(response: httpx.Response, url: str, settings: Settings, deadline: float) -> str:
    """The page's text, read as it streams in: refused past the size cap, given up past
    the deadline (httpx's timeout is per read, which a drip of bytes never reaches)."""
    cap = int(settings.http_max_page_mb * 1024 * 1024)
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > cap:
        raise _too_large(url, settings)
    body = bytearray()
    for chunk in response.iter_bytes():
        body += chunk
        if len(body) > cap:
            raise _too_large(url, settings)
        if time.monotonic() > deadline:
            raise _TooSlow()
    return body.decode(response.encoding or "utf-8", errors="replace")


def _too_large(url: str, settings: Settings) -> DpeError:
    return InvalidInput(
        f"ADEME API page {url} is larger than {settings.http_max_page_mb:g} MB "
        "(DPE_HTTP_MAX_PAGE_MB): not an ADEME page, or ask for smaller pages (`size=`)"
    )


def _get_page(client: httpx.Client, url: str, settings: Settings, fetch_deadline: float):
    """One API page, retried with exponential backoff on 429, 5xx and network failures,
    within the page's and the whole fetch's deadline."""
    attempts = settings.http_retries + 1
    for attempt in range(attempts):
        response = None
        deadline = min(time.monotonic() + settings.http_page_deadline_s, fetch_deadline)
        try:
            with client.stream("GET", url) as response:
                if response.status_code == 429 or response.status_code >= 500:
                    problem = f"answered HTTP {response.status_code}"
                elif response.status_code >= 400:
                    raise InvalidInput(f"ADEME API {url} answered HTTP {response.status_code}")
                else:
                    return parse_json(
                        _read_body(response, url, settings, deadline), f"ADEME API page {url}"
                    )
        except (httpx.TransportError, _TooSlow) as error:
            log.debug("ADEME API %s: %r", url, error)
            if offline := _offline(error, httpx.URL(url).host):
                raise offline from error
            problem = f"unreachable: {_network_problem(error)}"
        delay = _retry_delay(response, attempt, settings)
        if attempt + 1 < attempts and time.monotonic() + delay < fetch_deadline:
            log.warning("ADEME API %s; retrying in %.1f s", problem, delay)
            time.sleep(delay)
        elif attempt + 1 < attempts:
            raise _fetch_too_long(settings, problem)
    tries = f"{attempts} attempt" + ("s" if attempts > 1 else "")
    raise Unavailable(f"ADEME API {url} {problem} ({tries})")


def _fetch_too_long(settings: Settings, problem: str) -> DpeError:
    return Unavailable(
        f"ADEME API fetch stopped after {settings.http_fetch_deadline_s:g} s "
        f"(DPE_HTTP_FETCH_DEADLINE_S); the last page {problem}"
    )


def _next_page(page, current: httpx.URL, first: httpx.URL, seen: set[str]) -> str | None:
    """The page's `next` cursor, checked: on the first page's host, never seen before."""
    found = page.get("next") if isinstance(page, dict) else None
    if not found:
        return None
    following = current.join(str(found))
    if (following.scheme, following.host, following.port) != (
        first.scheme,
        first.host,
        first.port,
    ):
        raise InvalidInput(
            f"ADEME API page {current} points its `next` cursor to another server "
            f"({following.scheme}://{following.host}): refused"
        )
    if str(following) in seen:
        raise InvalidInput(
            f"ADEME API page {current} points its `next` cursor back to a page already "
            f"fetched ({following}): the pages loop"
        )
    return str(following)


def _sort_key(url: httpx.URL) -> str | None:
    """The field the pages are sorted on (data-fair's `sort`, its first key), if any."""
    sort = url.params.get("sort")
    return sort.split(",")[0].strip().lstrip("-") or None if sort else None


def _run_length(records: list[dict], key: str) -> int:
    """How many records lead with the first record's `key` value."""
    first = records[0].get(key) if records else None
    return next((n for n, record in enumerate(records) if record.get(key) != first), len(records))


def _keep(records: list[dict], limit: int, key: str | None) -> int:
    """How many of the fetched records to keep: `limit`; on pages sorted by `key`, the
    first run of equal values (the watermark's day, which the previous fetch may hold
    already) does not count, and the run at the limit is kept whole: the next incremental
    fetch starts at that value and must make progress past it."""
    if key is None:
        return min(len(records), limit)
    target = _run_length(records, key) + limit
    if len(records) <= target:
        return len(records)
    last, end = records[target - 1].get(key), target
    while end < len(records) and records[end].get(key) == last:
        end += 1
    return end


def _wants_more(records: list[dict], limit: int, key: str | None) -> bool:
    """Fewer than `_keep` would keep: the next page may still belong."""
    if key is None:
        return len(records) < limit
    return _keep(records, limit, key) == len(records)


def fetch_api(
    url: str, limit: int, settings: Settings, progress: Progress = no_progress
) -> list[dict]:
    """Records from the ADEME data-fair API, following `next` cursors up to `limit` (on
    pages sorted by a field, see `_keep`); `progress` gets the share of `limit` fetched."""
    first = httpx.URL(url)
    if "size" not in first.params:
        first = first.copy_merge_params({"size": min(limit, API_PAGE_SIZE)})
    key = _sort_key(first)
    records: list[dict] = []
    page_url: str | None = str(first)
    seen: set[str] = set()
    fetch_deadline = time.monotonic() + settings.http_fetch_deadline_s
    with httpx.Client(timeout=settings.http_timeout_s, follow_redirects=True) as client:
        while page_url and _wants_more(records, limit, key):
            if time.monotonic() > fetch_deadline:
                raise _fetch_too_long(settings, "was not asked")
            seen.add(page_url)
            page = _get_page(client, page_url, settings, fetch_deadline)
            batch = page_records(page, f"ADEME API page {page_url}")
            if not batch:
                break
            records.extend(batch)
            progress(
                min(len(records), limit) / limit,
                f"{len(records)} records fetched from the ADEME API",
            )
            page_url = _next_page(page, httpx.URL(page_url), first, seen)
    return records[: _keep(records, limit, key)]
