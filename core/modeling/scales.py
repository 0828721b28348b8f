"""The official tertiary DPE label scales.

By regulation the energy label is a threshold of the primary consumption
(kWhEP/m²/an) on one of four scales, chosen by the kind of building; the GES
label likewise on emissions (kgCO2/m²/an). The bounds below are the upper
bounds (inclusive) of classes A..F; G is everything above F's bound.

numpy only: the API encodes records with these before it has imported sklearn.
"""

import functools

import numpy as np

LABELS = tuple("ABCDEFG")

ARRETE_2006 = "Arrêté du 15 septembre 2006 (SOCU0611881A)"
ARRETE_2012 = "Arrêté du 18 avril 2012 (DEVL1220586A, centres commerciaux)"

# family -> (description, legal source of the énergie scale, of the GES scale)
FAMILIES = {
    "bureau_administration_enseignement": (
        "bureaux, administrations, enseignement (modèle 6.3.a)",
        f"{ARRETE_2006}, Annexe 3 §3.2",
        f"{ARRETE_2006}, Annexe 4 §2.2",
    ),
    "occupation_continue": (
        "occupation continue: hôpitaux, hôtels, internats, maisons de retraite (modèle 6.3.b)",
        f"{ARRETE_2006}, Annexe 3 §3.2",
        f"{ARRETE_2006}, Annexe 4 §2.2",
    ),
    "autres_batiments": (
        "autres: théâtres, salles de sport, restauration, commerces individuels (modèle 6.3.c)",
        f"{ARRETE_2006}, Annexe 3 §3.2",
        f"{ARRETE_2006}, Annexe 4 §2.2",
    ),
    "centre_commercial": (
        "centres commerciaux",
        f"{ARRETE_2012}, Annexe 3-3",
        f"{ARRETE_2012}, Annexe 4-2",
    ),
}

# (kind, family) -> upper inclusive bounds of A, B, C, D, E, F
SCALES = {
    ("energie", "bureau_administration_enseignement"): (50, 110, 210, 350, 540, 750),
    ("energie", "occupation_continue"): (100, 210, 370, 580, 830, 1130),
    ("energie", "autres_batiments"): (30, 90, 170, 270, 380, 510),
    ("energie", "centre_commercial"): (80, 120, 180, 230, 330, 450),
    ("ges", "bureau_administration_enseignement"): (5, 15, 30, 60, 100, 145),
    ("ges", "occupation_continue"): (12, 30, 65, 110, 160, 220),
    ("ges", "autres_batiments"): (3, 10, 25, 45, 70, 95),
    ("ges", "centre_commercial"): (10, 15, 25, 35, 55, 80),
}

# Secteur d'activité (its ERP/IGH type code) -> the scale the regulation assigns.
_FAMILY_BY_CODE = {
    "W": "bureau_administration_enseignement",
    "R": "bureau_administration_enseignement",
    "S": "bureau_administration_enseignement",
    "GHW": "bureau_administration_enseignement",
    "GHR": "bureau_administration_enseignement",
    "J": "occupation_continue",
    "U": "occupation_continue",
    "O": "occupation_continue",
    "GHO": "occupation_continue",
    "GHU": "occupation_continue",
    # ERP types the sample lacks: hôtels-restaurants d'altitude and refuges de montagne
    # lodge people like O (hôtels); PA, CTS, SG, PS, GA, EF take the default.
    "OA": "occupation_continue",
    "REF": "occupation_continue",
}
DEFAULT_FAMILY = "autres_batiments"


@functools.lru_cache(maxsize=1024)
def sector_key(secteur_activite: str | None) -> str | None:
    """What identifies a sector across spellings: its ERP/IGH code ('J', 'GHW', 'OA'), or,
    for a sector without one ('autres tertiaires non ERP'), its text in lower case."""
    if not isinstance(secteur_activite, str) or not secteur_activite.strip():
        return None
    if ":" in secteur_activite:
        return secteur_activite.split(":", 1)[0].strip().upper()
    return secteur_activite.strip().lower()


@functools.lru_cache(maxsize=1024)  # a few dozen sectors, each asked for once per record
def family_for_sector(secteur_activite: str | None) -> str:
    """The regulatory scale for a sector such as 'W : Administrations, banques, bureaux'."""
    if not isinstance(secteur_activite, str):
        return DEFAULT_FAMILY
    if "bureaux" in secteur_activite.lower() and ":" not in secteur_activite:
        return "bureau_administration_enseignement"  # « locaux d'entreprise (bureaux) »
    code = secteur_activite.split(":", 1)[0].strip()
    return _FAMILY_BY_CODE.get(code, DEFAULT_FAMILY)


def label_index(values, family: str, kind: str = "energie") -> np.ndarray:
    """0 (A) .. 6 (G) for each value on the given scale; NaN where the value is missing."""
    values = np.asarray(values, dtype=float)
    index = np.searchsorted(SCALES[(kind, family)], values, side="left").astype(float)
    index[np.isnan(values)] = np.nan
    return index


def label_for(value: float | None, family: str, kind: str = "energie") -> str | None:
    if value is None or np.isnan(value):
        return None
    return LABELS[int(label_index([value], family, kind)[0])]


def distance_to_better_class(value: float, family: str, kind: str = "energie") -> float | None:
    """How much the value must drop to reach the next better class (None when already A)."""
    index = int(label_index([value], family, kind)[0])
    if index == 0:
        return None
    return float(value - SCALES[(kind, family)][index - 1])
