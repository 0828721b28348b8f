"""Drawing where a synthetic record is (département, commune, address, coordinates), its
dates and its administrative columns (N°DPE, model, replaced diagnostics)."""

import numpy as np

from tooling.synth_parts import (
    Parts,
    normalised,
    optional,
    per_version,
)
from tooling.synth_tables import (
    BAN_NULL_RATE,
    COMPLEMENT_BATIMENT_RATE,
    COMPLEMENTS_LOGEMENT,
    COPROPRIETE_RATE,
    DEPARTMENTS,
    FIRST_ESTABLISHED,
    FLOORS,
    GEOCODED_RATE,
    HOUSE_NUMBER_NULL_RATE,
    ID_MULTIPLIER,
    ID_OFFSET,
    ID_SEED_STRIDE,
    ID_SPACE,
    IMMEUBLE_ASSOCIE_RATE,
    INVARIANTS,
    LAST_ESTABLISHED,
    MODELE_DPE,
    RECEPTION_COUNTS,
    RECEPTION_DAYS,
    REPLACED,
    RESIDENCES,
    STAIRCASES,
    STREET_NULL_RATE,
    STREETS,
)


def _parse_departments() -> dict[str, np.ndarray]:
    """DEPARTMENTS as columns. Text columns are object arrays so records share their str."""
    rows = [line.split("|") for line in DEPARTMENTS.strip().splitlines()]
    codes, regions, counts, communes, insee, postal, x, y, spread = zip(*rows, strict=True)
    text_columns = {
        "code": codes,
        "region": regions,
        "commune": communes,
        "commune_upper": [commune.upper() for commune in communes],
        "insee": insee,
        "postal": postal,
        "postal_raw": [str(int(code)) for code in postal],  # the raw field drops the 0
        "dpe_department": [code[:2] for code in postal],  # Corsica is « 20 » in N°DPE
    }
    table = {key: np.asarray(values, dtype=object) for key, values in text_columns.items()}
    table["weight"] = normalised(np.asarray(counts, dtype=float))
    for key, values in (("x", x), ("y", y), ("spread", spread)):
        table[key] = np.asarray(values, dtype=float)
    return table


def _texts(values) -> np.ndarray:
    return np.asarray(values, dtype=object)


_DEPARTMENTS = _parse_departments()
# How a diagnostician types a street: as is, in capitals, in lower case.
_STREET_FORMS = _texts([STREETS, [s.upper() for s in STREETS], [s.lower() for s in STREETS]])
_STREET_CODES = _texts([f"_{40 * i + 100:04d}" for i in range(len(STREETS))])
_HOUSE_NUMBERS = _texts([str(i) for i in range(1000)])
_HOUSE_NUMBER_CODES = _texts([f"_{i:05d}" for i in range(1000)])
_GEOCODING = _texts(
    (
        "adresse non géocodée ban car aucune correspondance trouvée",
        "adresse géocodée ban à l'adresse",
    )
)


def draw_location(rng, n) -> Parts:
    table = _DEPARTMENTS
    d = rng.choice(len(table["code"]), n, p=table["weight"])
    commune, postal, insee = table["commune"][d], table["postal"][d], table["insee"][d]
    x = ((table["x"][d] + rng.normal(0.0, table["spread"][d])) * 1000).round(2)
    y = ((table["y"][d] + rng.normal(0.0, table["spread"][d])) * 1000).round(2)
    street_index = rng.integers(0, len(STREETS), n)
    street = _STREET_FORMS[0, street_index]
    house = np.minimum(rng.geometric(0.06, n), 999)
    number = _HOUSE_NUMBERS[house]
    has_street = rng.random(n) >= STREET_NULL_RATE
    has_number = has_street & (rng.random(n) >= HOUSE_NUMBER_NULL_RATE)
    in_street = np.where(has_number, number + " " + street, street)
    address = np.where(has_street, in_street + " ", "") + postal + " " + commune
    identifier = (
        insee
        + np.where(has_street, _STREET_CODES[street_index], "")
        + np.where(has_number, _HOUSE_NUMBER_CODES[house], "")
    )
    geocoded = rng.random(n) < GEOCODED_RATE
    score = np.where(geocoded, rng.normal(0.63, 0.12, n), rng.normal(0.74, 0.19, n))
    ban = {
        "Nom__commune_(BAN)": commune,
        "Code_INSEE_(BAN)": insee,
        "N°_voie_(BAN)": _none_where(number, ~has_number),
        "Identifiant__BAN": identifier,
        "Adresse_(BAN)": address,
        "Code_postal_(BAN)": postal,
        "Score_BAN": score.clip(0.11, 0.99).round(2),
        "Nom__rue_(BAN)": _none_where(street, ~has_street),
        "Coordonnée_cartographique_X_(BAN)": x,
        "Coordonnée_cartographique_Y_(BAN)": y,
        "N°_département_(BAN)": table["code"][d],
        "N°_région_(BAN)": table["region"][d],
    }
    # A few records were never matched to the BAN: all its fields are then null.
    unmatched = rng.random(n) < BAN_NULL_RATE
    for name, values in ban.items():
        ban[name] = _none_where(values, unmatched)
    typed = rng.choice(3, n, p=[0.6, 0.25, 0.15])
    columns = {
        **ban,
        "Adresse_brute": number + " " + _STREET_FORMS[typed, street_index],
        "Code_postal_(brut)": table["postal_raw"][d],
        "Statut_géocodage": _GEOCODING[geocoded.astype(np.int64)],
        "Nom__commune_(Brut)": np.where(rng.random(n) < 0.6, table["commune_upper"][d], commune),
        **_address_complements(rng, n),
    }
    return Parts(columns, dpe_department=table["dpe_department"][d])


def _none_where(values, mask) -> np.ndarray:
    """Copy of `values` as an object array, None where `mask`."""
    out = np.array(values, dtype=object)
    out[mask] = None
    return out


def _address_complements(rng, n) -> dict:
    # Complément d'adresse bâtiment: mostly a diagnostician's file reference.
    building = np.full(n, None, dtype=object)
    present = rng.random(n) < COMPLEMENT_BATIMENT_RATE
    references = _zfill(rng.integers(1, 9999, present.sum()), 4)
    building[present] = np.strings.add("21/IMO/", references)
    building[present & (rng.random(n) < 0.15)] = "Sans objet"
    return {
        "N°_étage_appartement": optional(rng, FLOORS, n),
        "Nom_résidence": optional(rng, RESIDENCES, n),
        "Complément_d'adresse_bâtiment": building,
        "Cage_d'escalier": optional(rng, STAIRCASES, n),
        "Complément_d'adresse_logement": optional(rng, COMPLEMENTS_LOGEMENT, n),
    }


def admin_columns(rng, seed, rows, version, methode, dates, location) -> dict:
    n = len(rows)
    department = location.dpe_department
    year = dates.year
    number = _dpe_numbers(year, department, _id_sequence(seed, rows))
    # A replaced diagnostic is an older one (same year or the one before).
    older = np.maximum(year - rng.integers(0, 2, n), 2021)
    replaced = np.full(n, None, dtype=object)
    mask = rng.random(n) < per_version(version, REPLACED)
    random_ids = rng.integers(0, ID_SPACE, mask.sum())
    replaced[mask] = _dpe_numbers(older[mask], department[mask], random_ids)
    associated = np.full(n, None, dtype=object)
    mask = rng.random(n) < IMMEUBLE_ASSOCIE_RATE
    associated[mask] = _dpe_numbers(
        year[mask], department[mask], rng.integers(0, ID_SPACE, mask.sum())
    )
    copro = np.full(n, None, dtype=object)
    mask = rng.random(n) < COPROPRIETE_RATE
    copro[mask] = np.strings.add("A", rng.choice(["A", "B"], mask.sum())) + _zfill(
        rng.integers(0, 10**7, mask.sum()), 7
    )
    return {
        "N°DPE": number.astype(object),
        "Modèle_DPE": np.full(n, MODELE_DPE, dtype=object),
        "N°_DPE_remplacé": replaced,
        "Version_DPE": version,
        "N°_DPE_immeuble_associé": associated,
        "Méthode_du_DPE": methode,
        "N°_immatriculation_copropriété": copro,
        "Invariant_fiscal_logement": optional(rng, INVARIANTS, n),
    }


def _id_sequence(seed, rows) -> np.ndarray:
    """A number in [0, ID_SPACE) per (seed, row), all distinct (see ID_SEED_STRIDE)."""
    position = (seed * ID_SEED_STRIDE + rows + ID_OFFSET) % ID_SPACE
    return position * ID_MULTIPLIER % ID_SPACE


def _zfill(numbers, width) -> np.ndarray:
    """Non-negative integers as zero-padded text (np.strings.zfill fails on empty arrays)."""
    text = np.asarray(numbers, dtype=np.int64).astype(str)
    return np.strings.zfill(text, width) if len(text) else text


_LETTERS = np.asarray(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ"), dtype=str)


def _dpe_numbers(year, department, sequence) -> np.ndarray:
    """« 2101T0071793X »: year (2 digits), département, T, 7 digits, a letter."""
    sequence = np.asarray(sequence, dtype=np.int64)
    digits = _zfill(sequence % 10**7, 7)
    years = _zfill(np.asarray(year) % 100, 2)
    return years + department + "T" + digits + _LETTERS[sequence // 10**7]


def draw_dates(rng, version) -> Parts:
    """ISO dates: established within the version's period, visited before, received the
    next day (mostly), valid ten years less a day."""
    n = len(version)
    first = per_version(version, FIRST_ESTABLISHED, "datetime64[D]")
    last = per_version(version, LAST_ESTABLISHED, "datetime64[D]")
    span = (last - first).astype(np.int64) + 1
    established = first + (rng.random(n) * span).astype(np.int64)
    # A third visit and establish within a day; the others weeks or months apart.
    same_days = rng.random(n) < 0.35
    delay = np.where(same_days, rng.integers(0, 2, n), np.minimum(rng.exponential(90, n), 900))
    visited = established - delay.astype(np.int64)
    days_to_receive = rng.choice(RECEPTION_DAYS, n, p=normalised(RECEPTION_COUNTS))
    received = established + days_to_receive
    valid_until = _plus_ten_years(established) - 1
    columns = {
        "Date_réception_DPE": _iso(received),
        "Date_établissement_DPE": _iso(established),
        "Date_visite_diagnostiqueur": _iso(visited),
        "Date_fin_validité_DPE": _iso(valid_until),
    }
    year = established.astype("datetime64[Y]").astype(np.int64) + 1970
    return Parts(columns, year=year)


def _plus_ten_years(days: np.ndarray) -> np.ndarray:
    years = days.astype("datetime64[Y]")
    months = days.astype("datetime64[M]")
    month_in_year = months - years.astype("datetime64[M]")
    day_in_month = days - months.astype("datetime64[D]")
    return ((years + 10).astype("datetime64[M]") + month_in_year).astype(
        "datetime64[D]"
    ) + day_in_month


# ISO text of every day the generator can produce, looked up rather than formatted per record.
_FIRST_DAY = np.datetime64("2015-01-01")
_ISO_DAYS = np.datetime_as_string(_FIRST_DAY + np.arange(366 * 26), unit="D").astype(object)


def _iso(days: np.ndarray) -> np.ndarray:
    return _ISO_DAYS[(days - _FIRST_DAY).astype(np.int64)]
