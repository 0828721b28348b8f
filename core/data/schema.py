"""The ADEME « DPE tertiaire » columns and the record a prediction takes.

`COLUMNS` is the official 63-column format (official name, snake_case name, type).
`RECORD_FIELDS` are the fields a model may use, with their bounds and known
categories: `core.data.validation` derives every check, for records and for bulk data, from them.
"""

from dataclasses import dataclass

# (official ADEME name, snake_case name, type: string | number | integer | date)
COLUMNS: list[tuple[str, str, str]] = [
    ("N°DPE", "n_dpe", "string"),
    ("Date_réception_DPE", "date_reception_dpe", "date"),
    ("Date_établissement_DPE", "date_etablissement_dpe", "date"),
    ("Date_visite_diagnostiqueur", "date_visite_diagnostiqueur", "date"),
    ("Modèle_DPE", "modele_dpe", "string"),
    ("N°_DPE_remplacé", "n_dpe_remplace", "string"),
    ("Date_fin_validité_DPE", "date_fin_validite_dpe", "date"),
    ("Version_DPE", "version_dpe", "number"),
    ("N°_DPE_immeuble_associé", "n_dpe_immeuble_associe", "string"),
    ("Méthode_du_DPE", "methode_du_dpe", "string"),
    ("N°_immatriculation_copropriété", "n_immatriculation_copropriete", "string"),
    ("Invariant_fiscal_logement", "invariant_fiscal_logement", "string"),
    ("Etiquette_DPE", "etiquette_dpe", "string"),
    ("Etiquette_GES", "etiquette_ges", "string"),
    ("Conso_kWhep/m²/an", "conso_kwhep_m2_an", "number"),
    ("Emission_GES_kgCO2/m²/an", "emission_ges_kgco2_m2_an", "number"),
    ("Année_construction", "annee_construction", "integer"),
    ("Catégorie_ERP", "categorie_erp", "string"),
    ("Période_construction", "periode_construction", "string"),
    ("Secteur_activité", "secteur_activite", "string"),
    ("Nombre_occupant", "nombre_occupant", "integer"),
    ("Surface_(SHON)", "surface_shon", "number"),
    ("Surface_utile", "surface_utile", "number"),
    ("Type_énergie_principale_chauffage", "type_energie_principale_chauffage", "string"),
    ("Adresse_brute", "adresse_brute", "string"),
    ("Nom__commune_(BAN)", "nom_commune_ban", "string"),
    ("Code_INSEE_(BAN)", "code_insee_ban", "string"),
    ("N°_voie_(BAN)", "n_voie_ban", "string"),
    ("Identifiant__BAN", "identifiant_ban", "string"),
    ("Adresse_(BAN)", "adresse_ban", "string"),
    ("Code_postal_(BAN)", "code_postal_ban", "string"),
    ("Score_BAN", "score_ban", "number"),
    ("Nom__rue_(BAN)", "nom_rue_ban", "string"),
    ("Coordonnée_cartographique_X_(BAN)", "coordonnee_cartographique_x_ban", "number"),
    ("Coordonnée_cartographique_Y_(BAN)", "coordonnee_cartographique_y_ban", "number"),
    ("Code_postal_(brut)", "code_postal_brut", "string"),
    ("N°_étage_appartement", "n_etage_appartement", "string"),
    ("Nom_résidence", "nom_residence", "string"),
    ("Complément_d'adresse_bâtiment", "complement_d_adresse_batiment", "string"),
    ("Cage_d'escalier", "cage_d_escalier", "string"),
    ("Complément_d'adresse_logement", "complement_d_adresse_logement", "string"),
    ("Statut_géocodage", "statut_geocodage", "string"),
    ("Nom__commune_(Brut)", "nom_commune_brut", "string"),
    ("N°_département_(BAN)", "n_departement_ban", "string"),
    ("N°_région_(BAN)", "n_region_ban", "string"),
    ("Conso_é_finale_énergie_n°1", "conso_e_finale_energie_n_1", "number"),
    ("Conso_é_primaire_énergie_n°1", "conso_e_primaire_energie_n_1", "number"),
    ("Type_énergie_n°1", "type_energie_n_1", "string"),
    ("Type_usage_énergie_n°1", "type_usage_energie_n_1", "string"),
    ("Frais_annuel_énergie_n°1", "frais_annuel_energie_n_1", "number"),
    ("Année_relève_conso_énergie_n°1", "annee_releve_conso_energie_n_1", "integer"),
    ("Conso_é_finale_énergie_n°2", "conso_e_finale_energie_n_2", "number"),
    ("Conso_é_primaire_énergie_n°2", "conso_e_primaire_energie_n_2", "number"),
    ("Type_énergie_n°2", "type_energie_n_2", "string"),
    ("Type_usage_énergie_n°2", "type_usage_energie_n_2", "string"),
    ("Frais_annuel_énergie_n°2", "frais_annuel_energie_n_2", "number"),
    ("Année_relève_conso_énergie_n°2", "annee_releve_conso_energie_n_2", "integer"),
    ("Conso_é_finale_énergie_n°3", "conso_e_finale_energie_n_3", "number"),
    ("Conso_é_primaire_énergie_n°3", "conso_e_primaire_energie_n_3", "number"),
    ("Type_énergie_n°3", "type_energie_n_3", "string"),
    ("Type_usage_énergie_n°3", "type_usage_energie_n_3", "string"),
    ("Frais_annuel_énergie_n°3", "frais_annuel_energie_n_3", "number"),
    ("Année_relève_conso_énergie_n°3", "annee_releve_conso_energie_n_3", "integer"),
]
OFFICIAL_TO_SNAKE = {official: snake for official, snake, _ in COLUMNS}
SNAKE_TO_OFFICIAL = {snake: official for official, snake, _ in COLUMNS}
COLUMN_TYPES = {snake: kind for _, snake, kind in COLUMNS}

ID_COLUMN = "N°DPE"
LABEL_COLUMN = "Etiquette_DPE"
LABELS = tuple("ABCDEFG")
SURFACE_PLACEHOLDER = 100.0  # m², typed in by diagnosticians who did not know the surface
CONSO_PLACEHOLDER = 0.1  # kWhEP/m²/an, on « vierge »-like records labelled A

SECTEURS = (
    "J : Structures d’accueil pour personnes âgées ou personnes handicapées",
    "M : Magasins de vente, centres commerciaux",
    "autres tertiaires non ERP",
    "W : Administrations, banques, bureaux",
    "R : Établissements d’éveil, d’enseignement, de formation, centres de vacances, "
    "centres de loisirs sans hébergement",
    "locaux d'entreprise (bureaux)",
    "N : Restaurants et débits de boisson",
    "GHW : Bureaux",
    "U : Établissements de soins",
    "X : Établissements sportifs couverts",
    "GHZ : Usage mixte",
    "L : Salles d'auditions, de conférences, de réunions, de spectacles ou à usage multiple",
    "GHR : Enseignement",
    "O : Hôtels et pensions de famille",
    "S : Bibliothèques, centres de documentation",
    "T : Salles d'exposition à vocation commerciale",
    "Y : Musées",
    "V : Établissements de divers cultes",
    "P : Salles de danse et salles de jeux",
    "GHO : Hôtel",
    "GHU : Usage sanitaire",
)
PERIODES = (
    "avant 1948",
    "1948-1974",
    "1975-1977",
    "1978-1982",
    "1983-1988",
    "1989-2000",
    "2001-2005",
    "2006-2012",
    "2013-2021",
    "après 2021",
)
CATEGORIES_ERP = (
    "1ère Catégorie",
    "2ème Catégorie",
    "3ème Catégorie",
    "4ème Catégorie",
    "5ème Catégorie",
)
METHODES = (
    "dpe tertiaire facture",
    "dpe tertiaire vierge",
    "dpe tertiaire facture dans un bâtiment de logement",
    "dpe tertiaire vierge dans un bâtiment de logement",
    "dpe tertiaire bâtiment neuf",
    "dpe tertiaire vierge neuf",
)
ENERGIES = (
    "Électricité",
    "Gaz naturel",
    "Réseau de Chauffage urbain",
    "Fioul domestique",
    "autre combustible fossile",
    "Propane",
    "GPL",
    "Bois – Bûches",
    "Bois – Plaquettes forestières",
    "Bois – Plaquettes d’industrie",
    "Bois – Granulés (pellets) ou briquettes",
)
USAGES = (
    "périmètre de l'usage inconnu",
    "Chauffage",
    "Eau Chaude sanitaire",
    "Ascenseur(s)",
    "Eclairage",
    "Bureautique",
    "Refroidissement",
    "auxiliaires et ventilation",
    "Autres usages",
)


@dataclass(frozen=True)
class FieldSpec:
    """One record field: its kind, unit and the bounds a valid value lies in.

    `categories` lists the values known from ADEME's data (a vocabulary, not a
    closed set: ingest keeps unseen ones, the model's own schema decides what it takes).
    Bounds are inclusive unless `min_exclusive`.
    """

    name: str
    kind: str  # "category" | "number" | "integer"
    description: str
    unit: str | None = None
    min: float | None = None
    max: float | None = None
    min_exclusive: bool = False
    categories: tuple[str, ...] | None = None

    @property
    def official(self) -> str:
        return SNAKE_TO_OFFICIAL[self.name]


# Bounds: physical limits plus room for real extremes seen in ADEME's data
# (consumption up to ~69,000 kWhEP/m²/an exists and is flagged, not rejected).
_SPECS = (
    FieldSpec(
        "secteur_activite", "category", "Secteur d'activité (type ERP/IGH)", categories=SECTEURS
    ),
    FieldSpec("periode_construction", "category", "Période de construction", categories=PERIODES),
    FieldSpec("categorie_erp", "category", "Catégorie ERP", categories=CATEGORIES_ERP),
    FieldSpec("methode_du_dpe", "category", "Méthode du DPE", categories=METHODES),
    FieldSpec("version_dpe", "number", "Version du DPE", min=1.0, max=3.0),
    FieldSpec(
        "surface_utile", "number", "Surface utile", "m²", min=0, max=1_000_000, min_exclusive=True
    ),
    FieldSpec(
        "surface_shon",
        "number",
        "Surface hors œuvre nette",
        "m²",
        min=0,
        max=1_000_000,
        min_exclusive=True,
    ),
    FieldSpec("annee_construction", "integer", "Année de construction", min=1000, max=2030),
    FieldSpec(
        "type_energie_principale_chauffage",
        "category",
        "Énergie principale de chauffage",
        categories=ENERGIES,
    ),
    FieldSpec("type_energie_n_1", "category", "Énergie n°1", categories=ENERGIES),
    FieldSpec("type_usage_energie_n_1", "category", "Usage de l'énergie n°1", categories=USAGES),
    FieldSpec("type_energie_n_2", "category", "Énergie n°2", categories=ENERGIES),
    FieldSpec("n_departement_ban", "category", "Département (code)"),
    FieldSpec(
        "conso_kwhep_m2_an",
        "number",
        "Consommation d'énergie primaire",
        "kWhEP/m²/an",
        min=0,
        max=1_000_000,
    ),
    FieldSpec(
        "emission_ges_kgco2_m2_an",
        "number",
        "Émissions de GES",
        "kgCO2/m²/an",
        min=0,
        max=1_000_000,
    ),
    FieldSpec(
        "conso_e_finale_energie_n_1",
        "number",
        "Consommation finale, énergie n°1",
        "kWh",
        min=0,
        max=1e10,
    ),
)
RECORD_FIELDS: dict[str, FieldSpec] = {spec.name: spec for spec in _SPECS}


def to_snake_case(columns) -> list[str]:
    """Official ADEME names to snake_case; names already in snake_case (or unknown) are kept."""
    return [OFFICIAL_TO_SNAKE.get(column, column) for column in columns]


def source_columns(columns) -> dict[str, str]:
    """official name -> the source's column holding it (official or snake_case name; the
    official one when a source has both)."""
    found = {}
    for column in columns:
        official = column if column in OFFICIAL_TO_SNAKE else SNAKE_TO_OFFICIAL.get(column)
        if official and (official not in found or column == official):
            found[official] = column
    return found
