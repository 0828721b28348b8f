"""The ADEME data-fair API client: records fetched page by page, following `next` cursors.

429, 5xx and network failures are retried with exponential backoff (a server's Retry-After
is honoured up to MAX_RETRY_AFTER_S), then are `Unavailable` (a later try may work). A host
name that does not resolve, or no route to it, is not retried: the machine is offline or
the URL is wrong, and the message says to check the source or to ingest a CSV export
instead. A name that does not resolve is `InvalidInput`: trying again will not help.
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


def _network_problem(error: httpx.TransportError) -> str:
    if isinstance(error, httpx.TimeoutException):
        return "no answer in time"
    if isinstance(error, httpx.ConnectError):
        return "the connection failed"
    return "the connection broke off"


def _get_page(client: httpx.Client, url: str, settings: Settings):
    """One API page, retried with exponential backoff on 429, 5xx and network failures."""
    attempts = settings.http_retries + 1
    for attempt in range(attempts):
        response = None
        try:
            response = client.get(url)
        except httpx.TransportError as error:
            log.debug("ADEME API %s: %r", url, error)
            if offline := _offline(error, httpx.URL(url).host):
                raise offline from error
            problem = f"unreachable: {_network_problem(error)}"
        else:
            if response.status_code == 429 or response.status_code >= 500:
                problem = f"answered HTTP {response.status_code}"
            elif response.status_code >= 400:
                raise InvalidInput(f"ADEME API {url} answered HTTP {response.status_code}")
            else:
                return parse_json(response.text, f"ADEME API page {url}")
        if attempt + 1 < attempts:
            delay = _retry_delay(response, attempt, settings)
            log.warning("ADEME API %s; retrying in %.1f s", problem, delay)
            time.sleep(delay)
    tries = f"{attempts} attempt" + ("s" if attempts > 1 else "")
    raise Unavailable(f"ADEME API {url} {problem} ({tries})")


def fetch_api(
    url: str, limit: int, settings: Settings, progress: Progress = no_progress
) -> list[dict]:
    """Records from the ADEME data-fair API, following `next` cursors up to `limit`;
    `progress` gets the share of `limit` fetched."""
    first = httpx.URL(url)
    if "size" not in first.params:
        first = first.copy_merge_params({"size": min(limit, API_PAGE_SIZE)})
    records: list[dict] = []
    page_url: str | None = str(first)
    with httpx.Client(timeout=settings.http_timeout_s, follow_redirects=True) as client:
        while page_url and len(records) < limit:
            page = _get_page(client, page_url, settings)
            batch = page_records(page, f"ADEME API page {page_url}")[: limit - len(records)]
            if not batch:
                break
            records.extend(batch)
            progress(len(records) / limit, f"{len(records)} records fetched from the ADEME API")
            page_url = page.get("next") if isinstance(page, dict) else None
    return records
