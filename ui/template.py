"""The template CSV the Batch predict page offers: the champion's input fields under their
ADEME names, and one example row a user can overwrite."""

import csv
import io

from core.data.schema import SNAKE_TO_OFFICIAL

# A plausible office building; a category the champion never saw is replaced by its first one.
EXAMPLE = {
    "secteur_activite": "W : Administrations, banques, bureaux",
    "periode_construction": "1948-1974",
    "categorie_erp": "5ème Catégorie",
    "methode_du_dpe": "dpe tertiaire facture",
    "version_dpe": 2,
    "surface_utile": 850,
    "surface_shon": 900,
    "annee_construction": 1965,
    "type_energie_principale_chauffage": "Gaz naturel",
    "type_energie_n_1": "Gaz naturel",
    "type_usage_energie_n_1": "Chauffage",
    "type_energie_n_2": "Électricité",
    "n_departement_ban": "69",
    "conso_kwhep_m2_an": 260,
    "emission_ges_kgco2_m2_an": 35,
    "conso_e_finale_energie_n_1": 150_000,
}


def example_value(entry: dict):
    """The example value of one `input_schema` entry ({name, type, categories, min, max})."""
    value = EXAMPLE.get(entry["name"])
    categories = entry.get("categories")
    if categories and value not in categories:
        return categories[0]
    if value is None and entry.get("type") == "number":
        return entry.get("min") or 0
    return "" if value is None else value


def template_csv(input_schema: list[dict]) -> bytes:
    """A CSV (UTF-8, `,`) with one column per field of the champion and one example row."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([SNAKE_TO_OFFICIAL.get(entry["name"], entry["name"]) for entry in input_schema])
    writer.writerow([example_value(entry) for entry in input_schema])
    return buffer.getvalue().encode("utf-8")
