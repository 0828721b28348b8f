"""The real ADEME sample (DPE_SHARED_DATA): one dataset version from every format it comes in."""

import pytest

from core.config import Settings
from core.data import warehouse
from core.data.ingest import ingest
from tests.support.sources import page_server, read_pages, reencode

pytestmark = pytest.mark.real_data


def fresh(settings, tmp_path, name):
    """Settings with their own DPE_HOME: each source is ingested into an empty warehouse."""
    return settings.model_copy(
        update={"home": tmp_path / name, "http_backoff_s": 0.01, "http_retries": 2}
    )


@pytest.fixture(scope="module")
def sample_version(sample_csv, tmp_path_factory):
    settings = Settings(_env_file=None, home=tmp_path_factory.mktemp("sample") / "home")
    return ingest(settings, sample_csv)


def test_sample_csv_counts(sample_version):
    assert {k: sample_version[k] for k in ("rows", "labelled", "duplicates", "rejected")} == {
        "rows": 2200,
        "labelled": 1653,
        "duplicates": 0,
        "rejected": 0,
    }


def test_json_pages_give_the_same_version(settings, tmp_path, shared_data, sample_version):
    pages = fresh(settings, tmp_path, "pages")
    result = ingest(pages, shared_data / "ademe_api_pages")
    assert (result["rows"], result["labelled"]) == (2200, 1653)
    assert result["duplicates"] == 512  # the pages overlap
    assert result["dataset_version"] == sample_version["dataset_version"]
    assert warehouse.describe(pages)["placeholders"] == {
        "surface_utile_100": 1676,
        "conso_kwhep_m2_an_0.1": 400,
    }


def test_cp1252_semicolon_decimal_comma_gives_the_same_version(
    settings, tmp_path, sample_csv, sample_version
):
    french = reencode(sample_csv, tmp_path / "sample_cp1252.csv")
    assert b";" in french.read_bytes()[:200] and b"\xb0" in french.read_bytes()[:10]  # N°DPE
    result = ingest(fresh(settings, tmp_path, "cp1252"), french)
    assert (result["rows"], result["labelled"], result["duplicates"]) == (2200, 1653, 0)
    assert result["dataset_version"] == sample_version["dataset_version"]


def test_api_chain_of_the_real_pages(settings, tmp_path, shared_data, sample_version):
    pages = read_pages(shared_data / "ademe_api_pages")
    with page_server(pages, failures={3: 429, 11: 500}) as server:
        result = ingest(fresh(settings, tmp_path, "api"), server.url)
    assert len(server.requests) == len(pages) + 2  # every page, two of them twice
    assert result["rows"] == 2200
    assert result["dataset_version"] == sample_version["dataset_version"]
