"""The synthetic ADEME records: format, determinism, realism, shifted variants, API pages.

Rates are checked on 20,000 records against the real sample's figures (kept in the test so it
runs on a fresh clone); `test_matches_real_sample` also compares with the sample itself.
"""

import csv
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from core.data.schema import COLUMNS, ID_COLUMN, SECTEURS
from core.modeling.scales import FAMILIES, LABELS, label_index
from tests.support.cli import ROOT, run_cli
from tooling import synth

OFFICIAL = [official for official, _, _ in COLUMNS]
MAGASINS = "M : Magasins de vente, centres commerciaux"
N_RECORDS = 20_000


@pytest.fixture(scope="module")
def records() -> pd.DataFrame:
    return synth.generate_records(N_RECORDS, seed=7)


def _labelled(frame):
    return frame[frame["Etiquette_DPE"].notna()]


def _consistent_with_a_scale(values, labels, kind="energie") -> np.ndarray:
    values = pd.to_numeric(values).to_numpy(dtype=float)
    letters = np.asarray(LABELS)
    agree = [letters[label_index(values, f, kind).astype(int)] == labels for f in FAMILIES]
    return np.any(agree, axis=0)


def test_official_columns_in_order_with_types(records):
    assert list(records.columns) == OFFICIAL
    for official, _, kind in COLUMNS:
        expected = "float64" if kind in ("number", "integer") else "object"
        assert records[official].dtype == expected, official
    assert set(records["Modèle_DPE"]) == {"DPE 2006 tertiaire et ERP"}


def test_same_seed_same_records_other_seed_other_records():
    first = synth.generate_records(300, seed=3)
    pd.testing.assert_frame_equal(first, synth.generate_records(300, seed=3))
    other = synth.generate_records(300, seed=4)
    assert not first["N°DPE"].isin(other["N°DPE"]).any()
    assert not first["Conso_kWhep/m²/an"].equals(other["Conso_kWhep/m²/an"])


def test_dpe_numbers_unique_and_in_ademe_format(records):
    numbers = records[ID_COLUMN]
    assert numbers.is_unique
    assert numbers.str.fullmatch(r"\d{2}[0-9AB]{2}T\d{7}[A-Z]").all()
    year_established = records["Date_établissement_DPE"].str[2:4]
    assert (numbers.str[:2] == year_established).all()
    replaced = records["N°_DPE_remplacé"].dropna()
    assert replaced.str.fullmatch(r"\d{2}[0-9AB]{2}T\d{7}[A-Z]").all()


def test_codes_keep_leading_zeros_and_dates_are_iso(records):
    assert records["Code_postal_(BAN)"].dropna().str.fullmatch(r"\d{5}").all()
    assert records["Code_INSEE_(BAN)"].dropna().str.fullmatch(r"\d{5}|2[AB]\d{3}").all()
    assert records["N°_département_(BAN)"].dropna().str.fullmatch(r"\d{2}|2[AB]|97\d").all()
    assert records["N°_région_(BAN)"].dropna().str.fullmatch(r"\d{2}").all()
    assert (records["N°_département_(BAN)"] == "01").any()  # a leading zero survives
    dates = ["Date_réception_DPE", "Date_établissement_DPE", "Date_visite_diagnostiqueur"]
    for column in [*dates, "Date_fin_validité_DPE"]:
        assert records[column].str.fullmatch(r"\d{4}-\d{2}-\d{2}").all(), column
    established = pd.to_datetime(records["Date_établissement_DPE"])
    assert (pd.to_datetime(records["Date_visite_diagnostiqueur"]) <= established).all()
    assert (pd.to_datetime(records["Date_réception_DPE"]) >= established).all()
    ten_years_less_a_day = established + pd.DateOffset(years=10) - pd.Timedelta(days=1)
    assert (pd.to_datetime(records["Date_fin_validité_DPE"]) == ten_years_less_a_day).all()


def test_labels_follow_the_official_scales(records):
    labelled = _labelled(records)
    assert set(labelled["Etiquette_DPE"]) <= set(LABELS)
    energy = _consistent_with_a_scale(labelled["Conso_kWhep/m²/an"], labelled["Etiquette_DPE"])
    ges = _consistent_with_a_scale(
        labelled["Emission_GES_kgCO2/m²/an"], labelled["Etiquette_GES"], "ges"
    )
    assert energy.mean() >= 0.99 and ges.mean() >= 0.99
    unlabelled = records[records["Etiquette_DPE"].isna()]
    assert unlabelled["Conso_kWhep/m²/an"].isna().all()
    assert unlabelled["Etiquette_GES"].isna().all()
    assert unlabelled["Méthode_du_DPE"].dropna().str.contains("vierge|neuf").mean() > 0.9


# (description, rate on the generated records, real rate in the sample, tolerance)
def _rates(frame):
    labelled = _labelled(frame)
    conso = frame["Conso_kWhep/m²/an"]
    placeholder = labelled["Conso_kWhep/m²/an"] == 0.1
    return [
        ("unlabelled", frame["Etiquette_DPE"].isna().mean(), 0.249, 0.02),
        ("Conso == 0.1 among labelled", placeholder.mean(), 0.242, 0.02),
        (
            "label A among Conso == 0.1",
            (labelled["Etiquette_DPE"][placeholder] == "A").mean(),
            1,
            0,
        ),
        ("Surface_utile == 100.0", (frame["Surface_utile"] == 100.0).mean(), 0.762, 0.02),
        ("chauffage null", frame["Type_énergie_principale_chauffage"].isna().mean(), 0.902, 0.02),
        ("Surface_(SHON) null", frame["Surface_(SHON)"].isna().mean(), 0.125, 0.02),
        ("Année_construction null", frame["Année_construction"].isna().mean(), 0.284, 0.02),
        ("Catégorie_ERP null", frame["Catégorie_ERP"].isna().mean(), 0.110, 0.02),
        ("Méthode_du_DPE null", frame["Méthode_du_DPE"].isna().mean(), 0.313, 0.02),
        ("Type_énergie_n°2 null", frame["Type_énergie_n°2"].isna().mean(), 0.731, 0.02),
        ("absurd Conso > 5,000", (conso > 5000).mean(), 0.001, 0.002),
    ]


def test_nulls_and_placeholders_at_real_rates(records):
    for name, generated, real, tolerance in _rates(records):
        assert abs(generated - real) <= tolerance, f"{name}: {generated:.3f} vs real {real:.3f}"
    measured = _labelled(records)["Conso_kWhep/m²/an"]
    median = measured[measured > 0.1].median()
    assert 190 <= median <= 270  # 230 kWhEP/m²/an in the sample


def test_building_features_carry_some_signal(records):
    """Consumption depends a little on period and sector, as in the real data."""
    measured = records[records["Conso_kWhep/m²/an"] > 0.1]
    log_conso = np.log(measured["Conso_kWhep/m²/an"])
    by_period = log_conso.groupby(measured["Période_construction"]).mean()
    assert by_period["avant 1948"] > by_period["2013-2021"] + 0.2
    by_sector = log_conso.groupby(measured["Secteur_activité"]).mean()
    assert by_sector["N : Restaurants et débits de boisson"] > by_sector[SECTEURS[3]] + 0.2


def test_shifted_generator_shifts():
    base = synth.generate_records(5_000, seed=1)
    shifted = synth.generate_records(
        5_000, seed=1, sector_weights={MAGASINS: 0.8, SECTEURS[3]: 0.2}, surface_scale=3.0
    )
    assert (base["Secteur_activité"] == MAGASINS).mean() < 0.25
    assert (shifted["Secteur_activité"] == MAGASINS).mean() == pytest.approx(0.8, abs=0.03)
    assert set(shifted["Secteur_activité"]) == {MAGASINS, SECTEURS[3]}
    ratio = shifted["Surface_utile"].median() / base["Surface_utile"].median()
    assert ratio == pytest.approx(3.0, rel=0.1)
    with pytest.raises(ValueError):
        synth.generate_records(10, sector_weights={MAGASINS: 0.0})


def test_write_csv_streams_the_same_records_as_a_csv_export(tmp_path, monkeypatch):
    monkeypatch.setattr(synth, "BLOCK_ROWS", 1_000)  # small blocks keep the test fast
    n = 2_500  # three blocks, written in three chunks
    path = synth.write_csv(tmp_path / "out" / "dpe.csv", n, seed=2, chunk_rows=1)
    text = path.read_text(encoding="utf-8")
    header = next(csv.reader([text.split("\n", 1)[0]]))
    assert header == OFFICIAL
    read = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    expected = synth.generate_records(n, seed=2)
    assert len(read) == n
    assert read[ID_COLUMN].equals(expected[ID_COLUMN].astype(str))
    assert read["Code_postal_(BAN)"].dropna().str.len().eq(5).all()
    assert not read["Année_construction"].dropna().str.contains(r"\.").any()  # 2007, not 2007.0
    assert '"W : Administrations, banques, bureaux"' in text  # quoted only where needed
    conso = pd.to_numeric(read["Conso_kWhep/m²/an"])
    np.testing.assert_allclose(conso, expected["Conso_kWhep/m²/an"], equal_nan=True)


def test_api_pages_drop_null_fields_and_chain_cursors():
    frame = synth.generate_records(250, seed=5)
    pages = synth.to_api_pages(frame, page_size=100, base_url="http://127.0.0.1:9/lines")
    assert [len(page["results"]) for page in pages] == [100, 100, 50]
    assert all(page["total"] == 250 for page in pages)
    assert pages[0]["next"].startswith("http://127.0.0.1:9/lines?")
    assert pages[-1]["next"] is None
    records = [record for page in pages for record in page["results"]]
    assert [r[ID_COLUMN] for r in records] == frame[ID_COLUMN].tolist()
    for record, (_, row) in zip(records, frame.iterrows(), strict=True):
        assert all(value is not None for value in record.values())
        assert set(record) - {"_i"} == {name for name in OFFICIAL if pd.notna(row[name])}
    json.dumps(pages)  # plain JSON types only
    with_year = next(r for r in records if "Année_construction" in r)
    assert isinstance(with_year["Année_construction"], int)
    assert isinstance(records[0]["Code_postal_(BAN)"], str)


def test_cli_generate(tmp_path):
    output = tmp_path / "gen.csv"
    command = [sys.executable, "-m", "tooling", "generate", "--rows", "120", "--seed", "3"]
    command += ["--output", str(output), "--json"]
    completed = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout) == {"rows": 120, "path": str(output)}
    assert len(pd.read_csv(output, dtype=str)) == 120


def test_generate_is_not_a_product_command(tmp_path):
    code, _, stderr = run_cli("generate", "--rows", "1", "--output", str(tmp_path / "x.csv"))
    assert code == 2 and "invalid choice: 'generate'" in stderr


def test_empty_and_invalid_requests():
    empty = synth.generate_records(0)
    assert list(empty.columns) == OFFICIAL and empty.empty
    assert synth.to_api_pages(empty) == [{"total": 0, "next": None, "results": []}]
    with pytest.raises(ValueError):
        synth.generate_records(10, surface_scale=0)


def _shares(series: pd.Series) -> pd.Series:
    return series.fillna("<null>").value_counts(normalize=True)


@pytest.mark.real_data
def test_matches_real_sample(sample_csv, records):
    """Category frequencies and labels of the generated records against the real sample."""
    real = pd.read_csv(sample_csv, dtype=str, keep_default_na=False, na_values=[""])
    tolerances = {
        "Secteur_activité": 0.02,
        "Période_construction": 0.02,
        "Catégorie_ERP": 0.02,
        "Méthode_du_DPE": 0.02,
        "Version_DPE": 0.02,
        "Type_énergie_n°1": 0.02,
        "Etiquette_DPE": 0.025,
    }
    generated = records.assign(Version_DPE=records["Version_DPE"].map(str))
    for column, tolerance in tolerances.items():
        real_shares, generated_shares = _shares(real[column]), _shares(generated[column])
        gaps = real_shares.sub(generated_shares, fill_value=0).abs()
        assert gaps.max() <= tolerance, f"{column}: {gaps.idxmax()!r} off by {gaps.max():.3f}"
    # The label distribution among labelled records (A..G) and the real placeholder rates.
    real_labels = _shares(_labelled(real)["Etiquette_DPE"])
    generated_labels = _shares(_labelled(records)["Etiquette_DPE"])
    assert real_labels.sub(generated_labels, fill_value=0).abs().max() <= 0.03
    real_frame = real.assign(
        **{
            name: pd.to_numeric(real[name])
            for name in ("Conso_kWhep/m²/an", "Surface_utile", "Surface_(SHON)")
        }
    )
    for name, real_rate, _, tolerance in _rates(real_frame):
        generated_rate = next(rate for n, rate, _, _ in _rates(records) if n == name)
        assert abs(generated_rate - real_rate) <= tolerance + 0.005, name
