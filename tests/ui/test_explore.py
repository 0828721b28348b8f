"""ui.explore: the Explore page's queries, checked against pandas on the same rows;
parameterised filters; the snapshot per dataset version; the warehouse never held open."""

import codecs
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from core.config import Settings
from core.data import warehouse
from core.data.csv_source import read_csv
from core.data.ingest import ingest
from core.data.schema import COLUMNS, LABELS
from core.errors import DpeError
from tests.support.cli import ROOT
from tests.support.sources import held_by_another_process
from tooling.synth import generate_records, write_csv
from ui import explore, explore_snapshot

SECTOR = "W : Administrations, banques, bureaux"


def make_settings(home: Path) -> Settings:
    return Settings(_env_file=None, home=home, mlflow_tracking_uri=f"sqlite:///{home}/m.db")


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    """2,000 generated records (a few made invalid) ingested; (settings, the cleaned rows)."""
    tmp = tmp_path_factory.mktemp("explore")
    frame = generate_records(2000, seed=21).astype(object)
    frame.loc[:4, "Surface_utile"] = "-5"  # five rejected records
    frame.to_csv(tmp / "records.csv", index=False)
    settings = make_settings(tmp / "home")
    ingest(settings, source=tmp / "records.csv")
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as con:
        rows = con.execute("SELECT * FROM dpe").df()
    return settings, rows


@pytest.fixture(scope="module")
def snap(loaded):
    return explore_snapshot.snapshot(loaded[0])


def valid(rows: pd.DataFrame) -> pd.DataFrame:
    return rows[rows["reject_reason"].isna()]


def test_kpis_and_label_distribution_match_pandas(snap, loaded):
    rows = valid(loaded[1])
    kpis = explore.kpis(snap, explore.Filters())
    assert kpis["records"] == len(rows) <= 1995
    assert kpis["labelled"] == rows["etiquette_dpe"].notna().sum()
    conso = rows.loc[~rows["conso_placeholder"], "conso_kwhep_m2_an"]
    assert kpis["median_conso"] == pytest.approx(conso.median())
    labelled = rows["etiquette_dpe"].dropna()
    assert kpis["share_fg"] == pytest.approx(labelled.isin(["F", "G"]).mean())
    assert kpis["share_ab"] == pytest.approx(labelled.isin(["A", "B"]).mean())

    distribution = explore.label_distribution(snap, explore.Filters())
    expected = rows["etiquette_dpe"].fillna(explore.NO_LABEL).value_counts()
    assert dict(zip(distribution["label"], distribution["records"], strict=True)) == dict(expected)
    assert distribution["label"].tolist()[-1] == explore.NO_LABEL
    assert distribution["label"].tolist()[:-1] == [x for x in LABELS if x in expected]


def test_rejected_records_only_when_asked(snap, loaded):
    with_rejected = explore.kpis(snap, explore.Filters(include_rejected=True))
    assert with_rejected["records"] == len(loaded[1]) == 2000
    assert with_rejected["rejected"] == loaded[1]["reject_reason"].notna().sum() >= 5


def test_filters_combine_like_pandas(snap, loaded):
    rows = valid(loaded[1])
    surface = rows["surface_shon"].fillna(rows["surface_utile"].where(~rows["surface_placeholder"]))
    filters = explore.Filters(
        secteurs=(SECTOR,), labels=("C", "D", "E"), surface_min=50.0, surface_max=2000.0
    )
    expected = rows[
        (rows["secteur_activite"] == SECTOR)
        & rows["etiquette_dpe"].isin(["C", "D", "E"])
        & surface.between(50.0, 2000.0)
    ]
    assert 0 < len(expected) < len(rows)
    assert explore.kpis(snap, filters)["records"] == len(expected)
    table = explore.records(snap, filters, limit=1000)
    assert sorted(table["N°DPE"]) == sorted(expected["n_dpe"])


def test_filter_values_are_parameters_not_sql(snap, loaded):
    hostile = explore.Filters(secteurs=("x') OR 1=1 --",), energies=("'; DROP TABLE dpe; --",))
    assert explore.kpis(snap, hostile)["records"] == 0
    assert explore.kpis(snap, explore.Filters())["records"] == len(valid(loaded[1]))


def test_period_heatmap_departements_and_nulls(snap, loaded):
    rows = valid(loaded[1])
    heatmap = explore.label_by_period(snap, explore.Filters())
    labelled = rows.dropna(subset=["etiquette_dpe", "periode_construction"])
    assert heatmap.to_numpy().sum() == len(labelled)
    assert list(heatmap.columns) == [x for x in LABELS if x in set(labelled["etiquette_dpe"])]
    assert heatmap.index[0] == "avant 1948"

    departements = explore.by_departement(snap, explore.Filters())
    expected = rows["n_departement_ban"].value_counts()
    assert dict(zip(departements["departement"], departements["records"], strict=True)) == dict(
        expected
    )

    nulls = explore.null_profile(snap, explore.Filters()).set_index("field")
    for _, snake, _ in COLUMNS:
        assert nulls.loc[snake, "missing"] == rows[snake].isna().sum(), snake
    assert nulls["share_missing"].is_monotonic_decreasing


def test_consumption_boxes(snap, loaded):
    rows = valid(loaded[1])
    stats = explore.consumption_stats(snap, explore.Filters(), by="family")
    assert set(stats["group"]) <= {
        "bureau_administration_enseignement",
        "occupation_continue",
        "autres_batiments",
        "centre_commercial",
    }
    assert (stats["p05"] <= stats["q1"]).all() and (stats["q3"] <= stats["p95"]).all()
    measured = rows[rows["etiquette_dpe"].notna() & ~rows["conso_placeholder"]]
    measured = measured[measured["conso_kwhep_m2_an"] > 0]
    assert stats["records"].sum() == len(measured)
    by_sector = explore.consumption_stats(snap, explore.Filters(), by="sector", top_sectors=3)
    assert by_sector["group"].nunique() == 3


def test_samples_are_bounded_and_maps_metropolitan(snap):
    scatter = explore.surface_vs_consumption(snap, explore.Filters(), sample=300)
    assert len(scatter) == 300 and (scatter["conso"] > 0).all()
    points = explore.coordinates(snap, explore.Filters(), sample=500)
    assert len(points) == 500
    assert points["x_km"].between(50, 1300).all() and points["y_km"].between(6000, 7200).all()


def test_records_are_the_most_recent_first(snap, loaded):
    table = explore.records(snap, explore.Filters(), limit=50)
    assert len(table) == 50
    dates = pd.to_datetime(table["Date DPE"])
    assert dates.is_monotonic_decreasing
    newest = pd.to_datetime(valid(loaded[1])["date_etablissement_dpe"]).max()
    assert dates.iloc[0] == newest


def test_export_holds_every_matching_row_with_official_names(snap, loaded):
    settings, rows = loaded
    filters = explore.Filters(labels=("G",))
    data = explore.export_csv(settings, snap, filters)
    exported = pd.read_csv(pd.io.common.BytesIO(data), dtype=str)
    assert list(exported.columns) == [official for official, _, _ in COLUMNS]
    expected = valid(rows)
    assert sorted(exported["N°DPE"]) == sorted(
        expected.loc[expected["etiquette_dpe"] == "G", "n_dpe"]
    )
    capped = explore.export_csv(settings, snap, explore.Filters(), max_rows=10)
    assert len(pd.read_csv(pd.io.common.BytesIO(capped))) == 10


def test_export_starts_with_a_byte_order_mark_for_excel(snap, loaded):
    """Issue 23.14: without a BOM, French Excel garbles the accents (« N°DPE »)."""
    data = explore.export_csv(loaded[0], snap, explore.Filters(), max_rows=3)
    assert data.startswith(codecs.BOM_UTF8)
    assert data[len(codecs.BOM_UTF8) :].decode("utf-8").startswith("N°DPE,")
    assert read_csv(data).columns[0] == "N°DPE"  # this project's reader skips it


def test_options_offer_what_the_data_holds(snap, loaded):
    rows = valid(loaded[1])
    options = explore.options(snap)
    assert set(options["secteurs"]) == set(rows["secteur_activite"].dropna())
    assert options["secteurs"][0] == rows["secteur_activite"].value_counts().index[0]
    assert options["labels"] == [x for x in LABELS if x in set(rows["etiquette_dpe"])]
    low, high = options["surface_range"]
    assert 0 < low < high


def test_a_new_version_gets_a_new_snapshot_and_ingest_runs_beside_the_page(tmp_path):
    """The page holds no connection to the warehouse: another process ingests freely."""
    settings = make_settings(tmp_path / "home")
    first = write_csv(tmp_path / "first.csv", 1000, seed=1)
    ingest(settings, source=first)
    version = warehouse.current_version(settings)
    snap = explore_snapshot.snapshot(settings, version)
    assert snap.version == version and snap.rows == 1000

    second = write_csv(tmp_path / "second.csv", 1000, seed=2)
    completed = subprocess.run(
        [sys.executable, "-m", "core", "ingest", "--source", str(second), "--json"],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "DPE_HOME": str(settings.home)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    new_version = warehouse.current_version(settings)
    assert new_version != version
    assert explore_snapshot.snapshot(settings, version) is snap  # what the caller asked for
    rebuilt = explore_snapshot.snapshot(settings, new_version)
    assert rebuilt.version == new_version and rebuilt.rows == 2000
    assert explore.kpis(rebuilt, explore.Filters(include_rejected=True))["records"] == 2000


def test_explore_reads_the_last_commit_while_another_process_ingests(tmp_path):
    """The page waited 28 s on the ingest's write lock; it reads the committed snapshot."""
    settings = make_settings(tmp_path / "home")
    ingest(settings, source=write_csv(tmp_path / "r.csv", 1000, seed=4))
    version = warehouse.current_version(settings)
    with held_by_another_process(settings):
        started = time.monotonic()
        snap = explore_snapshot.snapshot(make_settings(tmp_path / "home"))
        assert time.monotonic() - started < 5  # was LOCK_WAIT_S, then "busy"
        assert (snap.version, snap.rows) == (version, 1000)
        assert explore.kpis(snap, explore.Filters(include_rejected=True))["records"] == 1000


def test_no_data_is_a_clear_error(tmp_path):
    with pytest.raises(DpeError, match="no dataset yet"):
        explore_snapshot.snapshot(make_settings(tmp_path / "empty"))


def test_null_profile_counts_bits_exactly():
    """The bitmask arithmetic on its own: 63 columns, bit i = column i missing."""
    con = duckdb.connect(":memory:")
    con.execute("ATTACH ':memory:' AS snap")
    masks = np.array([0, 1, 1 << 62, (1 << 62) | 5, 5], dtype=np.int64)
    frame = pd.DataFrame({"null_mask": masks, "rejected": False})
    con.register("frame", frame)
    con.execute("CREATE TABLE snap.explore AS SELECT * FROM frame")
    snap = explore_snapshot.Snapshot("v", len(frame), 0.0, con)
    profile = explore.null_profile(snap, explore.Filters()).set_index("field")
    names = [snake for _, snake, _ in COLUMNS]
    assert profile.loc[names[0], "missing"] == 3  # bit 0 is set in 1, (1<<62)|5 and 5
    assert profile.loc[names[2], "missing"] == 2
    assert profile.loc[names[62], "missing"] == 2
    assert profile.loc[names[1], "missing"] == 0
