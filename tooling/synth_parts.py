"""Drawing the parts of a synthetic record: its kind, building, energies, consumption and
labels (vectorised with numpy, one block of records at a time)."""

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import ndtr

from core.data.schema import (
    CATEGORIES_ERP,
    PERIODES,
    USAGES,
)
from core.modeling.scales import FAMILIES, LABELS, family_for_sector, label_index, sector_key
from tooling.synth_tables import (
    AFTER_ELECTRICITY,
    AFTER_OTHER,
    AREA_EFFECT,
    AS_FIRST,
    AS_THIRD,
    CONSO_EFFECT,
    ELECTRICITY,
    ENERGY_TABLE,
    ERP_ALL_SECTORS,
    FAMILY_MIX,
    GES_FACTOR,
    GES_NOISE_SD,
    HEATING,
    KINDS,
    LARGE_AREA,
    LARGE_AREA_PLACEHOLDER_FACTOR,
    LOG_AREA_QUANTILES,
    LOG_CONSO_QUANTILES,
    LOG_CONSO_SD,
    LOG_OCCUPANT_QUANTILES,
    MEASURED,
    NEUF,
    NEUF_EFFECT,
    NO_SECOND_ENERGY,
    OCCUPANT_NULL,
    OCCUPANT_SPIKES,
    OUTLIER_RATE,
    PERIOD_COUNTS,
    PERIOD_EFFECTS,
    PERIOD_YEARS,
    PLACEHOLDER,
    PRICE,
    PRIMARY_FACTOR,
    PRIMARY_PER_AREA,
    RELEVE_COUNTS,
    RELEVE_YEARS,
    SCORE_CENTER,
    SCORE_NOISE_SD,
    SECTORS,
    SHON_NULL_RATE,
    SURFACE_100,
    THIRD_ENERGY_RATE,
    UNLABELLED,
    USAGE_COUNTS,
    UTILE_EQUALS_SHON_RATE,
    VERSIONS,
    YEAR_NULL,
    ZERO_CONSO_RATE,
)

# ---------------------------------------------------------------------------------------
# Drawing helpers
# ---------------------------------------------------------------------------------------


def _pick(rng, values, weights, size) -> np.ndarray:
    """`size` draws of `values` (an object array) with the given weights."""
    weights = np.asarray(weights, dtype=float)
    index = rng.choice(len(weights), size=size, p=weights / weights.sum())
    return np.asarray(values, dtype=object)[index]


def _from_quantiles(u, quantiles) -> np.ndarray:
    """Inverse of an empirical distribution given at evenly spaced quantiles."""
    return np.interp(u, np.linspace(0, 1, len(quantiles)), quantiles)


def _nulled(rng, values, rate) -> np.ndarray:
    """Copy of `values` (object array) with about `rate` of them set to None."""
    values = np.array(values, dtype=object)
    values[rng.random(len(values)) < rate] = None
    return values


def optional(rng, spec, n) -> np.ndarray:
    rate, values, weights = spec
    return _nulled(rng, _pick(rng, values, weights, n), 1 - rate)


def sector_choice(sector_weights):
    """The sector distribution per status: the sample's, or one the caller imposes."""
    if sector_weights is None:
        names = tuple(SECTORS)
        return {status: (names, [SECTORS[s][0][status] for s in names]) for status in range(3)}
    names = tuple(sector_weights)
    weights = [float(sector_weights[s]) for s in names]
    if not names or min(weights) < 0 or sum(weights) <= 0:
        raise ValueError("sector_weights needs non-negative weights with a positive sum")
    return {status: (names, weights) for status in range(3)}


# ---------------------------------------------------------------------------------------
# Record parts
# ---------------------------------------------------------------------------------------


def draw_kind(rng, n):
    kinds = rng.choice(len(KINDS), size=n, p=normalised([k[3] for k in KINDS]))
    version = np.array([k[0] for k in KINDS])[kinds]
    methode = np.array([k[1] for k in KINDS], dtype=object)[kinds]
    status = np.array([k[2] for k in KINDS], dtype=np.int8)[kinds]
    return version, methode, status


def normalised(weights) -> np.ndarray:
    weights = np.asarray(weights, dtype=float)
    return weights / weights.sum()


class Parts:
    """Columns of a record part, plus values later parts need."""

    def __init__(self, columns: dict, **values):
        self.columns = columns
        self.__dict__.update(values)


def draw_building(rng, status, version, methode, sectors, surface_scale) -> Parts:
    n = len(status)
    sector = np.empty(n, dtype=object)
    periode_index = np.empty(n, dtype=np.int64)
    for value in range(3):
        mask = status == value
        names, weights = sectors[value]
        sector[mask] = _pick(rng, names, weights, mask.sum())
        periode_index[mask] = rng.choice(
            len(PERIODES), mask.sum(), p=normalised(PERIOD_COUNTS[value])
        )
    erp = _draw_erp(rng, sector)
    year = _draw_year(rng, periode_index, version)
    area, utile, shon = _draw_surfaces(rng, version, surface_scale)
    columns = {
        "Secteur_activité": sector,
        "Catégorie_ERP": erp,
        "Période_construction": np.asarray(PERIODES, dtype=object)[periode_index],
        "Année_construction": year,
        "Nombre_occupant": _draw_occupants(rng, version),
        "Surface_(SHON)": shon,
        "Surface_utile": utile,
    }
    return Parts(columns, sector=sector, periode_index=periode_index, area=area)


def _draw_erp(rng, sector) -> np.ndarray:
    erp = np.empty(len(sector), dtype=object)
    choices = (*CATEGORIES_ERP, None)
    for name in pd.unique(sector):
        mask = sector == name
        counts = SECTORS[name][1] if name in SECTORS else ERP_ALL_SECTORS
        erp[mask] = _pick(rng, choices, counts, mask.sum())
    return erp


def _draw_year(rng, periode_index, version) -> np.ndarray:
    n = len(periode_index)
    first, last, usual, usual_share = (
        np.array(c)[periode_index] for c in zip(*PERIOD_YEARS, strict=True)
    )
    year = rng.integers(first, last + 1).astype(float)
    # Diagnosticians mostly enter one conventional year per period (1947, 1948, ...).
    conventional = rng.random(n) < usual_share
    year[conventional] = usual[conventional]
    year[rng.random(n) < per_version(version, YEAR_NULL)] = np.nan
    return year


def _draw_surfaces(rng, version, surface_scale):
    """(building area, Surface_utile, Surface_(SHON)): the area is what SHON records;
    Surface_utile is mostly the 100.0 placeholder, else mostly the area itself."""
    n = len(version)
    area = np.exp(_from_quantiles(rng.random(n), LOG_AREA_QUANTILES)).round(1).clip(1.0)
    # Large buildings get the placeholder less often (55 % above 2,000 m², 87 % below).
    placeholder_rate = per_version(version, SURFACE_100) * np.where(
        area > LARGE_AREA, LARGE_AREA_PLACEHOLDER_FACTOR, 1.035
    )
    placeholder = rng.random(n) < placeholder_rate
    measured_apart = (area * np.exp(rng.normal(0.3, 1.0, n))).round(1).clip(1.0)
    utile = np.where(rng.random(n) < UTILE_EQUALS_SHON_RATE, area, measured_apart)
    utile[placeholder] = 100.0
    shon_null = rng.random(n) < np.where(placeholder, SHON_NULL_RATE[True], SHON_NULL_RATE[False])
    shon = np.where(shon_null, np.nan, area)
    # Scaled surfaces stay > 0 (0.1 m² at least), as validation requires.
    area, utile, shon = (np.maximum((x * surface_scale).round(1), 0.1) for x in (area, utile, shon))
    return area, utile, shon


def _draw_occupants(rng, version) -> np.ndarray:
    n = len(version)
    occupants = np.exp(_from_quantiles(rng.random(n), LOG_OCCUPANT_QUANTILES)).round()
    u = rng.random(n)
    low = 0.0
    for value, share in OCCUPANT_SPIKES:
        occupants[(u >= low) & (u < low + share)] = value
        low += share
    occupants[rng.random(n) < per_version(version, OCCUPANT_NULL)] = np.nan
    return occupants


def per_version(version, field, dtype=float) -> np.ndarray:
    """Field `field` of `VERSIONS` for each record's version."""
    values = np.empty(len(version), dtype=object)
    for key, row in VERSIONS.items():
        values[version == key] = row[field]
    return values.astype(dtype)


NO_ENERGY = -1
_ENERGY_NAMES = np.asarray([*ENERGY_TABLE, None], dtype=object)  # code -1 is the last: None


def draw_energies(rng, status) -> Parts:
    """Energies n°1..3 as codes into ENERGY_TABLE (NO_ENERGY when absent), and their shares."""
    n = len(status)
    counts = list(zip(*ENERGY_TABLE.values(), strict=True))
    kinds = np.arange(len(ENERGY_TABLE))
    measured = status == MEASURED
    e1, e2, e3 = (np.full(n, NO_ENERGY, dtype=np.int64) for _ in range(3))
    e1[measured] = rng.choice(kinds, measured.sum(), p=normalised(counts[AS_FIRST]))
    e1[status == PLACEHOLDER] = ELECTRICITY  # placeholders always declare electricity only
    # A second energy is mostly another one after electricity, electricity after another.
    for is_electricity, column, without in (
        (True, AFTER_ELECTRICITY, NO_SECOND_ENERGY[0]),
        (False, AFTER_OTHER, NO_SECOND_ENERGY[1]),
    ):
        mask = measured & ((e1 == ELECTRICITY) == is_electricity)
        weights = normalised((*counts[column], without))
        e2[mask] = rng.choice(np.append(kinds, NO_ENERGY), mask.sum(), p=weights)
    has_second = e2 != NO_ENERGY
    has_third = has_second & (rng.random(n) < THIRD_ENERGY_RATE)
    e3[has_third] = rng.choice(kinds, has_third.sum(), p=normalised(counts[AS_THIRD]))
    # Shares of the primary consumption: the first energy dominates.
    share1 = np.where(has_second, rng.uniform(0.35, 0.95, n), 1.0)
    share3 = np.where(has_third, (1 - share1) * rng.uniform(0.1, 0.5, n), 0.0)
    share2 = np.where(has_second, 1 - share1 - share3, 0.0)
    return Parts({}, codes=(e1, e2, e3), shares=(share1, share2, share3))


def _energy_value(codes, field, default=0.0) -> np.ndarray:
    """Field `field` of `ENERGY_TABLE` for each energy code (default where there is none)."""
    values = [row[field] for row in ENERGY_TABLE.values()]
    return np.asarray([*values, default], dtype=float)[codes]


def draw_performance(rng, status, methode, building, energies) -> dict:
    n = len(status)
    score = _consumption_score(building, energies.codes[0], methode)
    z = (score + rng.normal(0.0, SCORE_NOISE_SD, n)) / LOG_CONSO_SD
    quantiles, log_conso = zip(*LOG_CONSO_QUANTILES, strict=True)
    conso = np.exp(np.interp(ndtr(z), quantiles, log_conso)).round(1)
    conso[rng.random(n) < ZERO_CONSO_RATE] = 0.0
    outlier = rng.random(n) < OUTLIER_RATE
    conso[outlier] = (conso[outlier] * 10 ** rng.uniform(1.5, 2.5, outlier.sum())).round(1)
    ges_per_kwhep = sum(
        share * _energy_value(kind, GES_FACTOR)
        for kind, share in zip(energies.codes, energies.shares, strict=True)
    )
    ges = (conso * ges_per_kwhep * np.exp(rng.normal(0.0, GES_NOISE_SD, n))).round(1)
    conso[status == PLACEHOLDER] = ges[status == PLACEHOLDER] = 0.1
    conso[status == UNLABELLED] = ges[status == UNLABELLED] = np.nan
    label, ges_label = _labels(rng, building.sector, conso, ges)
    return {
        "Etiquette_DPE": label,
        "Etiquette_GES": ges_label,
        "Conso_kWhep/m²/an": conso,
        "Emission_GES_kgCO2/m²/an": ges,
    }


def _consumption_score(building, main_energy, methode) -> np.ndarray:
    """Sum of the log-consumption effects of what is known about the building."""
    score = np.zeros(len(building.sector))
    for name in pd.unique(building.sector):
        score[building.sector == name] = SECTORS[name][2] if name in SECTORS else 0.0
    score += np.asarray(PERIOD_EFFECTS)[building.periode_index]
    score += _energy_value(main_energy, CONSO_EFFECT)
    score += AREA_EFFECT * (np.log(building.area) - LOG_AREA_QUANTILES[10])
    score += np.where(methode == NEUF, NEUF_EFFECT, 0.0)
    return score - SCORE_CENTER


def _labels(rng, sector, conso, ges):
    """Etiquette_DPE and Etiquette_GES: each record's values on the scale of one family."""
    n = len(sector)
    family = np.empty(n, dtype=np.int64)
    for name in pd.unique(sector):
        mask = sector == name
        mix = FAMILY_MIX[family_for_sector(name)]
        family[mask] = rng.choice(len(FAMILIES), mask.sum(), p=normalised(mix))
    letters = np.asarray(LABELS, dtype=object)
    label, ges_label = (np.full(n, None, dtype=object) for _ in range(2))
    for index, name in enumerate(FAMILIES):
        mask = (family == index) & ~np.isnan(conso)
        label[mask] = letters[label_index(conso[mask], name).astype(int)]
        ges_label[mask] = letters[label_index(ges[mask], name, "ges").astype(int)]
    return label, ges_label


@dataclass(frozen=True)
class ScaleShift:
    """Diagnosticians moving to another scale over time: a record of one of `sectors` (their
    `sector_key`: "M", "autres tertiaires non erp"; None: every sector) is labelled on the
    `toward` scale with a probability rising linearly with its diagnostic date, from 0 on
    `start` to `share` on `end` (ISO dates); otherwise as usual."""

    toward: str = "bureau_administration_enseignement"
    share: float = 0.8
    sectors: tuple[str, ...] | None = None
    start: str = "2021-07-01"
    end: str = "2024-02-13"

    def __post_init__(self):
        if self.toward not in FAMILIES or not 0 <= self.share <= 1:
            raise ValueError("a ScaleShift goes toward one of the FAMILIES, with 0 <= share <= 1")


def shift_scales(rng, shift: ScaleShift, sector, established, performance: dict) -> None:
    """Relabel, in `performance`, the records `shift` moves to its scale by their date."""
    days = np.asarray(established, dtype="datetime64[D]")
    start, end = np.datetime64(shift.start, "D"), np.datetime64(shift.end, "D")
    progress = np.clip((days - start) / max(end - start, np.timedelta64(1, "D")), 0.0, 1.0)
    moved = rng.random(len(days)) < shift.share * progress
    if shift.sectors is not None:
        moved &= np.isin(np.array([sector_key(s) for s in sector], dtype=object), shift.sectors)
    letters = np.asarray(LABELS, dtype=object)
    for field, value, kind in (
        ("Etiquette_DPE", "Conso_kWhep/m²/an", "energie"),
        ("Etiquette_GES", "Emission_GES_kgCO2/m²/an", "ges"),
    ):
        rows = moved & ~np.isnan(performance[value])
        performance[field][rows] = letters[
            label_index(performance[value][rows], shift.toward, kind).astype(int)
        ]


def heating_column(rng, status, version, energies) -> dict:
    """Type_énergie_principale_chauffage: rare, only on labelled records, mostly energy n°1."""
    n = len(status)
    e1, e2, _ = energies.codes
    present = (status != UNLABELLED) & (rng.random(n) < per_version(version, HEATING))
    heating = np.where((e2 != NO_ENERGY) & (rng.random(n) < 0.2), e2, e1)
    return {"Type_énergie_principale_chauffage": _ENERGY_NAMES[np.where(present, heating, -1)]}


def energy_columns(rng, status, building, energies, performance, dates) -> dict:
    """The three « énergie n°k » groups: Σ primary = Conso/m² × SHON × 1.1, split by share."""
    n = len(status)
    shon = building.columns["Surface_(SHON)"]
    surface = np.where(np.isnan(shon), building.area, shon)
    total = performance["Conso_kWhep/m²/an"] * surface * PRIMARY_PER_AREA
    placeholder = status == PLACEHOLDER
    columns = {}
    for k, (kind, share) in enumerate(zip(energies.codes, energies.shares, strict=True)):
        absent = kind == NO_ENERGY
        primary = (total * share).round(1)
        final = (primary / _energy_value(kind, PRIMARY_FACTOR, default=1.0)).round(1)
        cost = (final * _energy_value(kind, PRICE) * np.exp(rng.normal(0.0, 0.2, n))).round(1)
        for values in (primary, final, cost):
            values[placeholder] = 0.1
            values[absent] = np.nan
        slot = k + 1
        columns[f"Conso_é_finale_énergie_n°{slot}"] = final
        columns[f"Conso_é_primaire_énergie_n°{slot}"] = primary
        columns[f"Type_énergie_n°{slot}"] = _ENERGY_NAMES[kind]
        columns[f"Type_usage_énergie_n°{slot}"] = _usage(rng, k, placeholder, absent)
        columns[f"Frais_annuel_énergie_n°{slot}"] = cost
        columns[f"Année_relève_conso_énergie_n°{slot}"] = _releve(
            rng, placeholder, absent, dates.year
        )
    return columns


def _usage(rng, k, placeholder, absent) -> np.ndarray:
    usage = _pick(rng, USAGES, USAGE_COUNTS[k], len(absent))
    usage[placeholder] = USAGES[0]  # « périmètre de l'usage inconnu »
    usage[absent] = None
    return usage


def _releve(rng, placeholder, absent, year_established) -> np.ndarray:
    """Année_relève_conso: a recent year, sometimes 0 or null; never after the diagnostic."""
    n = len(absent)
    years = _pick(rng, RELEVE_YEARS, RELEVE_COUNTS, n).astype(float)
    placeholder_years = _pick(rng, (2021, 0, np.nan), (327, 49, 24), n).astype(float)
    years[placeholder] = placeholder_years[placeholder]
    years = np.where(years > 0, np.minimum(years, year_established), years)
    years[absent] = np.nan
    return years
