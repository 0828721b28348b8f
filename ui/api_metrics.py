"""The API's counters as the workbench shows them (Monitor page): its GET /metrics, read with
prometheus_client's parser. The counters are the API's since it started (per worker, or
summed over workers with PROMETHEUS_MULTIPROC_DIR): what a Prometheus server scrapes."""

from typing import TypedDict

from core.errors import DpeError, Unavailable


class ApiCounters(TypedDict):
    predictions: list[dict]  # {"label", "model_version", "source", "count"}
    errors: dict[str, int]  # reason -> count
    requests: list[dict]  # {"method", "route", "status", "count"}
    champion: dict | None  # {"model_version", "run_id", "dataset_version", "load_seconds"}


def read_api_counters(api_url: str, timeout_s: float = 2.0) -> ApiCounters:
    """The counters of the API at `api_url`; DpeError when it cannot be read."""
    import httpx

    url = f"{api_url.rstrip('/')}/metrics"
    try:
        response = httpx.get(url, timeout=timeout_s)
    except httpx.HTTPError as error:
        problem = f"the API at {api_url} does not answer ({type(error).__name__})"
        raise Unavailable(problem) from None
    if response.status_code == 404:
        raise DpeError(f"the API at {api_url} serves no metrics (DPE_METRICS=false)")
    if response.status_code != 200:
        raise DpeError(f"the API's /metrics answered {response.status_code}")
    return parse_counters(response.text)


def parse_counters(text: str) -> ApiCounters:
    """ApiCounters from Prometheus text."""
    from prometheus_client.parser import text_string_to_metric_families

    counters = ApiCounters(predictions=[], errors={}, requests=[], champion=None)
    load_seconds = None
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels, value = sample.labels, sample.value
            if sample.name == "dpe_predictions_total":
                counters["predictions"].append({**labels, "count": int(value)})
            elif sample.name == "dpe_prediction_errors_total":
                counters["errors"][labels["reason"]] = int(value)
            elif sample.name == "dpe_http_request_duration_seconds_count":
                counters["requests"].append({**labels, "count": int(value)})
            elif sample.name == "dpe_champion_info" and value == 1:
                counters["champion"] = dict(labels)
            elif sample.name == "dpe_champion_load_seconds":
                load_seconds = value
    if counters["champion"] is not None:
        counters["champion"]["load_seconds"] = load_seconds
    return counters
