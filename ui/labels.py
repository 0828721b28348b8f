"""Readable English names for what the workbench shows: record fields, columns, metrics.

One mapping for every page and chart, so no `Nom__commune_(BAN)` or `macro_f1` reaches a
user. Keys are snake_case names; official ADEME names are looked up through the schema.
Category values (ADEME's own, in French) are data and are shown as they are.
"""

import pandas as pd
import streamlit as st

from core.data.schema import OFFICIAL_TO_SNAKE, SNAKE_TO_OFFICIAL

FIELD_LABELS = {
    "n_dpe": "DPE number",
    "date_reception_dpe": "Date received",
    "date_etablissement_dpe": "Diagnostic date",
    "date_visite_diagnostiqueur": "Visit date",
    "modele_dpe": "DPE model",
    "n_dpe_remplace": "Replaced DPE number",
    "date_fin_validite_dpe": "Valid until",
    "version_dpe": "DPE version",
    "n_dpe_immeuble_associe": "Building DPE number",
    "methode_du_dpe": "DPE method",
    "n_immatriculation_copropriete": "Co-ownership number",
    "invariant_fiscal_logement": "Tax identifier",
    "etiquette_dpe": "DPE label",
    "etiquette_ges": "GHG label",
    "conso_kwhep_m2_an": "Primary energy use (kWhEP/m²/an)",
    "emission_ges_kgco2_m2_an": "GHG emissions (kgCO2/m²/an)",
    "annee_construction": "Year built",
    "categorie_erp": "ERP category",
    "periode_construction": "Construction period",
    "secteur_activite": "Activity sector",
    "nombre_occupant": "Occupants",
    "surface_shon": "Net floor area, SHON (m²)",
    "surface_utile": "Usable floor area (m²)",
    "type_energie_principale_chauffage": "Main heating energy",
    "adresse_brute": "Address (raw)",
    "nom_commune_ban": "Municipality",
    "code_insee_ban": "INSEE code",
    "n_voie_ban": "Street number",
    "identifiant_ban": "BAN identifier",
    "adresse_ban": "Address",
    "code_postal_ban": "Postcode",
    "score_ban": "Geocoding score",
    "nom_rue_ban": "Street",
    "coordonnee_cartographique_x_ban": "Lambert-93 X",
    "coordonnee_cartographique_y_ban": "Lambert-93 Y",
    "code_postal_brut": "Postcode (raw)",
    "n_etage_appartement": "Floor",
    "nom_residence": "Residence name",
    "complement_d_adresse_batiment": "Building address detail",
    "cage_d_escalier": "Staircase",
    "complement_d_adresse_logement": "Unit address detail",
    "statut_geocodage": "Geocoding status",
    "nom_commune_brut": "Municipality (raw)",
    "n_departement_ban": "Département",
    "n_region_ban": "Region",
    **{
        f"{stem}_{n}": f"{text} {n}"
        for n in (1, 2, 3)
        for stem, text in (
            ("conso_e_finale_energie_n", "Final energy use (kWh), energy"),
            ("conso_e_primaire_energie_n", "Primary energy use (kWh), energy"),
            ("type_energie_n", "Energy"),
            ("type_usage_energie_n", "Use of energy"),
            ("frais_annuel_energie_n", "Annual cost (€), energy"),
            ("annee_releve_conso_energie_n", "Year of meter reading, energy"),
        )
    },
}

# Names the workbench's own tables use (ui.explore records, predictions, drift).
OTHER_LABELS = {
    "date_dpe": "Diagnostic date",
    "label": "DPE label",
    "secteur": "Activity sector",
    "periode": "Construction period",
    "energie": "Energy 1",
    "commune": "Municipality",
    "departement": "Département",
    "predicted_label": "Predicted label",
    "warning": "Warning",
    "error": "Error",
    "error_code": "Error code",
    "accuracy": "Accuracy",
    "macro_f1": "Macro-F1",
    "balanced_accuracy": "Balanced accuracy",
    "log_loss": "Log loss",
    "ece": "Calibration error (ECE)",
    "monotonicity_violations": "Monotonicity violations",
    "precision": "Precision",
    "recall": "Recall",
    "f1": "F1",
    "support": "Support",
}


def label(name: str) -> str:
    """The readable name of a field, column or metric (snake_case or official ADEME name)."""
    snake = OFFICIAL_TO_SNAKE.get(name, name)
    found = FIELD_LABELS.get(snake) or OTHER_LABELS.get(snake)
    if found:
        return found
    if name.startswith("proba_"):
        return f"P({name.removeprefix('proba_')})"
    return name.replace("__", " ").replace("_", " ").strip().capitalize()


def official(name: str) -> str:
    """The ADEME column name of a snake_case field (shown as help, for lineage)."""
    return SNAKE_TO_OFFICIAL.get(name, name)


def table_columns(frame: pd.DataFrame) -> dict:
    """`column_config` for `st.dataframe` of records: readable headers, dates as dates
    (never `2024-02-13 00:00:00`). Pass `placeholder=""` too, so missing shows blank."""
    return {
        column: st.column_config.DateColumn(label(column), format="YYYY-MM-DD")
        if pd.api.types.is_datetime64_any_dtype(frame[column])
        else label(column)
        for column in frame.columns
    }


# The official scales' sector families (core.modeling.scales.FAMILIES), in English.
FAMILY_LABELS = {
    "bureau_administration_enseignement": "offices, administration, education",
    "occupation_continue": "continuous occupancy (hospitals, hotels, care homes)",
    "autres_batiments": "other buildings (theatres, sport, restaurants, shops)",
    "centre_commercial": "shopping centres",
}
