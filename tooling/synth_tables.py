"""The synthetic records' calibration: every rate, count and quantile measured once on
the real 2,200-record ADEME sample (a data table; the generator is tooling.synth)."""

import numpy as np

from core.data.schema import (
    COLUMNS,
    ENERGIES,
    METHODES,
    SECTEURS,
)

BLOCK_ROWS = 50_000
OFFICIAL_COLUMNS = [official for official, _, _ in COLUMNS]
NUMBER_COLUMNS = {official for official, _, kind in COLUMNS if kind in ("number", "integer")}
INTEGER_COLUMNS = {official for official, _, kind in COLUMNS if kind == "integer"}
# Text in the CSV export but integers in the API's JSON.
API_INTEGER_TEXT = {"Code_postal_(brut)", "N°_étage_appartement"}

MEASURED, PLACEHOLDER, UNLABELLED = 0, 1, 2
FACTURE, VIERGE, FACTURE_LOGEMENT, VIERGE_LOGEMENT, NEUF, VIERGE_NEUF = METHODES
MODELE_DPE = "DPE 2006 tertiaire et ERP"

# ---------------------------------------------------------------------------------------
# Calibration on the real sample
# ---------------------------------------------------------------------------------------

# (Version_DPE, Méthode_du_DPE, status, count): the method says whether a label exists:
# « vierge » ones have none or the 0.1 placeholder; v1.0 often has no method at all.
KINDS = (
    (1.0, None, MEASURED, 339),
    (1.0, None, PLACEHOLDER, 327),
    (1.0, None, UNLABELLED, 23),
    (1.0, NEUF, UNLABELLED, 7),
    (1.0, FACTURE, MEASURED, 81),
    (1.0, VIERGE, PLACEHOLDER, 54),
    (1.0, VIERGE, UNLABELLED, 1),
    (1.1, NEUF, UNLABELLED, 2),
    (1.1, FACTURE, MEASURED, 162),
    (1.1, VIERGE, PLACEHOLDER, 15),
    (2.0, FACTURE, MEASURED, 70),
    (2.0, VIERGE, PLACEHOLDER, 4),
    (2.0, VIERGE, UNLABELLED, 10),
    (2.1, NEUF, MEASURED, 8),
    (2.1, FACTURE, MEASURED, 347),
    (2.1, FACTURE_LOGEMENT, MEASURED, 1),
    (2.1, VIERGE, UNLABELLED, 371),
    (2.1, VIERGE_NEUF, UNLABELLED, 1),
    (2.2, NEUF, MEASURED, 1),
    (2.2, FACTURE, MEASURED, 153),
    (2.2, FACTURE_LOGEMENT, MEASURED, 44),
    (2.2, VIERGE, UNLABELLED, 75),
    (2.2, VIERGE_LOGEMENT, UNLABELLED, 27),
    (2.3, NEUF, MEASURED, 1),
    (2.3, FACTURE, MEASURED, 41),
    (2.3, FACTURE_LOGEMENT, MEASURED, 5),
    (2.3, VIERGE, UNLABELLED, 15),
    (2.3, VIERGE_LOGEMENT, UNLABELLED, 15),
)

# Per version: (first, last Date_établissement_DPE, share of Surface_utile == 100.0,
# share of null Année_construction, of null Nombre_occupant, of Type_énergie_principale_
# chauffage among labelled records, of N°_DPE_remplacé).
FIRST_ESTABLISHED, LAST_ESTABLISHED, SURFACE_100, YEAR_NULL, OCCUPANT_NULL, HEATING, REPLACED = (
    range(7)
)
VERSIONS = {
    1.0: ("2021-07-01", "2021-10-28", 0.840, 0.00, 0.76, 0.057, 0.062),
    1.1: ("2021-07-06", "2021-12-07", 0.804, 0.00, 0.00, 0.119, 0.028),
    2.0: ("2021-11-15", "2022-05-02", 0.310, 0.00, 0.01, 0.757, 0.048),
    2.1: ("2022-05-01", "2022-09-30", 0.654, 0.45, 0.00, 0.177, 0.038),
    2.2: ("2022-05-31", "2023-07-17", 0.897, 0.83, 0.00, 0.076, 0.073),
    2.3: ("2023-06-01", "2024-02-13", 0.805, 0.65, 0.00, 0.319, 0.078),
}

# Days from Date_établissement_DPE to Date_réception_DPE.
RECEPTION_DAYS, RECEPTION_COUNTS = (1, 2, 3, 5, 10, 0), (2010, 33, 25, 18, 9, 8)

# Secteur_activité (SECTEURS order) -> (counts by status: measured, placeholder, unlabelled),
# (Catégorie_ERP counts: 1ère..5ème, null), log-consumption effect of the sector.
SECTORS = {
    SECTEURS[0]: ((264, 252, 47), (439, 0, 3, 0, 120, 1), 0.05),  # J
    SECTEURS[1]: ((218, 41, 142), (40, 0, 3, 0, 339, 19), 0.18),  # M
    SECTEURS[2]: ((169, 6, 111), (67, 0, 0, 0, 44, 175), -0.02),  # autres non ERP
    SECTEURS[3]: ((169, 34, 77), (8, 0, 2, 1, 265, 4), -0.18),  # W
    SECTEURS[4]: ((137, 0, 6), (62, 0, 2, 1, 77, 1), -0.19),  # R
    SECTEURS[5]: ((70, 3, 70), (0, 0, 0, 0, 110, 33), -0.22),  # locaux d'entreprise
    SECTEURS[6]: ((59, 9, 53), (4, 0, 0, 0, 111, 6), 0.42),  # N
    SECTEURS[7]: ((29, 27, 17), (21, 0, 0, 0, 52, 0), -0.18),  # GHW
    SECTEURS[8]: ((38, 7, 13), (3, 0, 0, 0, 54, 1), 0.04),  # U
    SECTEURS[9]: ((27, 2, 1), (0, 0, 2, 0, 28, 0), 0.16),  # X
    SECTEURS[10]: ((12, 13, 0), (0, 0, 0, 0, 25, 0), 0.0),  # GHZ
    SECTEURS[11]: ((13, 1, 6), (1, 0, 0, 0, 18, 1), -0.04),  # L
    SECTEURS[12]: ((18, 0, 0), (12, 4, 0, 0, 2, 0), -0.07),  # GHR
    SECTEURS[13]: ((10, 2, 3), (0, 0, 2, 0, 13, 0), -0.05),  # O
    SECTEURS[14]: ((7, 0, 0), (0, 1, 0, 0, 6, 0), -0.04),  # S
    SECTEURS[15]: ((2, 2, 1), (0, 0, 0, 0, 5, 0), 0.0),  # T
    SECTEURS[16]: ((4, 0, 0), (0, 0, 0, 0, 4, 0), -0.03),  # Y
    SECTEURS[17]: ((3, 0, 0), (0, 0, 0, 0, 3, 0), 0.0),  # V
    SECTEURS[18]: ((3, 0, 0), (0, 0, 0, 0, 3, 0), 0.06),  # P
    SECTEURS[19]: ((1, 0, 0), (0, 0, 0, 0, 1, 0), 0.0),  # GHO
    SECTEURS[20]: ((0, 1, 0), (0, 0, 0, 0, 1, 0), 0.0),  # GHU
}
ERP_ALL_SECTORS = (657, 5, 14, 2, 1281, 241)  # for a sector the sample does not hold

# Période_construction (PERIODES order): counts by status, then (first year, last year,
# the year most diagnostics enter, its share), then the log-consumption effect.
PERIOD_COUNTS = (
    (350, 347, 47, 42, 54, 209, 54, 89, 49, 12),
    (153, 139, 10, 11, 18, 26, 11, 18, 14, 0),
    (208, 122, 8, 25, 47, 79, 7, 29, 19, 3),
)
PERIOD_YEARS = (
    (1850, 1946, 1947, 0.75),
    (1948, 1974, 1948, 0.74),
    (1975, 1977, 1975, 0.77),
    (1978, 1982, 1978, 0.56),
    (1983, 1988, 1983, 0.61),
    (1989, 2000, 1989, 0.47),
    (2001, 2005, 2001, 0.66),
    (2006, 2012, 2006, 0.51),
    (2013, 2021, 2013, 0.51),
    (2022, 2024, 2022, 0.69),
)
PERIOD_EFFECTS = (0.18, 0.0, 0.05, -0.05, 0.0, 0.0, -0.15, -0.22, -0.33, -0.45)

# Énergie (ENERGIES order) -> (kWhEP per kWh final, kgCO2 per kWhEP, € per kWh final,
# log-consumption effect as main energy, counts as energy n°1, as n°2 after electricity,
# as n°2 after another energy, as n°3).
PRIMARY_FACTOR, GES_FACTOR, PRICE, CONSO_EFFECT = range(4)
AS_FIRST, AFTER_ELECTRICITY, AFTER_OTHER, AS_THIRD = range(4, 8)
ELECTRICITY = 0  # code of « Électricité » in ENERGY_TABLE
ENERGY_TABLE = {
    ENERGIES[0]: (2.3, 0.028, 0.164, 0.06, 974, 100, 202, 86),  # Électricité
    ENERGIES[1]: (1.0, 0.210, 0.076, -0.20, 176, 160, 14, 20),  # Gaz naturel
    ENERGIES[2]: (1.0, 0.070, 0.070, -0.04, 55, 69, 2, 3),  # Réseau de chaleur
    ENERGIES[3]: (1.0, 0.320, 0.091, -0.31, 26, 21, 1, 1),  # Fioul domestique
    ENERGIES[4]: (1.0, 0.200, 0.069, -0.08, 13, 3, 1, 0),  # autre combustible fossile
    ENERGIES[5]: (1.0, 0.250, 0.148, 0.0, 3, 4, 0, 0),  # Propane
    ENERGIES[6]: (1.0, 0.250, 0.150, 0.0, 0, 1, 0, 0),  # GPL
    ENERGIES[7]: (1.0, 0.040, 0.050, -0.10, 3, 2, 1, 0),  # Bois – Bûches
    ENERGIES[8]: (1.0, 0.014, 0.039, 0.0, 1, 5, 1, 1),  # Bois – Plaquettes forestières
    ENERGIES[9]: (1.0, 0.026, 0.032, 0.0, 1, 0, 0, 0),  # Bois – Plaquettes d'industrie
    ENERGIES[10]: (1.0, 0.030, 0.060, 0.0, 1, 1, 0, 1),  # Bois – Granulés
}
NO_SECOND_ENERGY = (608, 57)  # records with electricity / another energy n°1 and no n°2
THIRD_ENERGY_RATE = 0.19  # records with an energy n°2 that also have a n°3
# Type_usage_énergie_n°k (USAGES order), measured records.
USAGE_COUNTS = (
    (995, 208, 24, 12, 7, 4, 1, 1, 1),
    (406, 132, 32, 1, 12, 0, 3, 0, 2),
    (47, 25, 28, 0, 7, 1, 3, 0, 0),
)
# Année_relève_conso_énergie_n°k: years, 0 (a placeholder) and null.
RELEVE_YEARS = (2017, 2018, 2019, 2020, 2021, 2022, 2023, 0, np.nan)
RELEVE_COUNTS = (88, 15, 92, 197, 331, 252, 39, 59, 155)

# (quantile, ln(Conso_kWhep/m²/an)) of measured records, finer in the tails that decide
# labels A and G: heavier tails than a log-normal (q01 28, q05 59, median 230, q95 930,
# q99 1,560, max 2,200 kWhEP/m²/an).
LOG_CONSO_QUANTILES = (
    (0.0, 1.308), (0.005, 2.778), (0.01, 3.348), (0.025, 3.669), (0.05, 4.083), (0.1, 4.5),
    (0.15, 4.691), (0.2, 4.826), (0.25, 4.934), (0.3, 5.087), (0.35, 5.176), (0.4, 5.29),
    (0.45, 5.363), (0.5, 5.439), (0.55, 5.497), (0.6, 5.584), (0.65, 5.668), (0.7, 5.756),
    (0.75, 5.842), (0.8, 5.974), (0.85, 6.16), (0.9, 6.4), (0.95, 6.834), (0.975, 7.058),
    (0.99, 7.35), (0.995, 7.446), (1.0, 7.697),
)  # fmt: skip
LOG_CONSO_SD = 0.81
# The effects above explain ~10 % of the log-consumption variance in the sample; the rest is
# noise. Effects are added on a normal score then mapped through the quantiles above.
SCORE_NOISE_SD = 0.77
SCORE_CENTER = 0.015  # mean of the summed effects on the sample's mix
AREA_EFFECT = -0.067  # per unit of ln(m²): large buildings use a little less per m²
NEUF_EFFECT = -0.5  # « bâtiment neuf » diagnostics are far lower in the sample
ZERO_CONSO_RATE = 0.0056  # measured records with Conso exactly 0.0 (labelled A)
OUTLIER_RATE = 0.002  # absurd consumptions (the sample holds 68,936 kWhEP/m²/an)
GES_NOISE_SD = 0.35

# ln(building area in m²) at quantiles 0, 0.05, ..., 1 (Surface_(SHON), or Surface_utile when
# it is not the placeholder): 1 m² to 136,000 m², median 170 m².
LOG_AREA_QUANTILES = (
    0.0, 3.424, 3.754, 3.97, 4.114, 4.268, 4.443, 4.595, 4.772, 4.956, 5.118,
    5.298, 5.514, 5.808, 6.147, 6.505, 6.91, 7.358, 7.952, 8.549, 11.82,
)  # fmt: skip
LARGE_AREA, LARGE_AREA_PLACEHOLDER_FACTOR = 2000.0, 0.75
SHON_NULL_RATE = {True: 0.047, False: 0.374}  # by "Surface_utile is the 100.0 placeholder"
UTILE_EQUALS_SHON_RATE = 0.78
PRIMARY_PER_AREA = 1.1  # Σ Conso_é_primaire = Conso/m² × SHON × 1.1 in 70 % of the sample

# Nombre_occupant: 0, 500 and 1 are what most diagnostics enter; the rest is ln-distributed.
OCCUPANT_SPIKES = ((0, 0.515), (500, 0.167), (1, 0.094))
LOG_OCCUPANT_QUANTILES = (
    0.69, 0.69, 1.1, 1.39, 1.61, 1.61, 1.79, 2.3, 2.3, 2.57, 3.0,
    3.4, 3.91, 4.34, 4.61, 5.24, 5.7, 5.97, 6.64, 9.0, 19.5,
)  # fmt: skip

# Which scale the label follows, given the scale the regulation assigns to the sector
# (estimated by EM on the sample's measured records; FAMILIES order: bureaux/enseignement,
# occupation continue, autres, centres commerciaux). Sectors of « occupation continue »
# mostly carry labels of other scales in the real data.
FAMILY_MIX = {
    "bureau_administration_enseignement": (0.820, 0.005, 0.175, 0.0),
    "occupation_continue": (0.244, 0.099, 0.635, 0.022),
    "autres_batiments": (0.064, 0.009, 0.879, 0.048),
    "centre_commercial": (0.0, 0.0, 0.1, 0.9),
}

# Département | région | count in the sample | commune | INSEE | postal code | Lambert-93
# X, Y of the commune (km) | spread of the département's records (km).
DEPARTMENTS = """
01|84|18|Bourg-en-Bresse|01053|01000|871|6570|22
02|32|14|Saint-Quentin|02691|02100|719|6970|19
03|84|10|Vichy|03310|03200|733|6559|21
04|93|15|Manosque|04112|04100|924|6307|18
05|93|10|Gap|05061|05000|944|6389|21
06|93|44|Valbonne|06152|06560|1027|6289|9
07|84|8|Aubenas|07019|07200|810|6392|20
08|44|4|Auvillers-les-Forges|08037|08260|798|6975|14
09|76|1|Pamiers|09225|09100|587|6225|10
10|44|12|La Chapelle-Saint-Luc|10081|10600|776|6802|11
11|76|7|Carcassonne|11069|11000|648|6235|16
12|76|4|Luc-la-Primaube|12133|12450|664|6356|12
13|93|80|Aix-en-Provence|13001|13100|895|6271|20
14|28|33|Lisieux|14366|14100|498|6897|17
15|84|11|Neuvéglise-sur-Truyère|15142|15260|698|6425|9
16|75|9|Châteaubernard|16089|16100|443|6514|15
17|75|36|La Rochelle|17300|17000|379|6570|14
18|24|7|Bourges|18033|18000|652|6663|16
19|75|11|Brive-la-Gaillarde|19031|19100|585|6452|13
21|27|15|Dijon|21231|21000|854|6696|12
22|53|14|Saint-Brieuc|22278|22000|273|6840|27
23|75|3|Bourganeuf|23030|23400|603|6540|16
24|75|12|Périgueux|24322|24000|521|6456|17
25|27|20|Besançon|25056|25000|927|6687|20
26|84|17|Valence|26362|26000|850|6427|18
27|28|19|Évreux|27229|27000|566|6882|21
28|24|9|Chartres|28085|28000|588|6817|19
29|53|28|Quimper|29232|29000|172|6789|25
2A|94|4|Porto-Vecchio|2A247|20137|1224|6075|8
2B|94|10|Corte|2B096|20250|1208|6154|18
30|76|22|Bagnols-sur-Cèze|30028|30200|830|6341|14
31|76|40|Toulouse|31555|31100|574|6278|18
32|76|8|Samatan|32410|32130|532|6268|12
33|75|37|Bordeaux|33063|33000|418|6422|14
34|76|46|Montpellier|34172|34000|771|6281|18
35|53|22|Rennes|35238|35000|351|6790|14
36|24|4|Buzançais|36031|36500|580|6644|8
37|24|16|Tours|37261|37100|526|6702|13
38|84|39|Grenoble|38185|38000|914|6458|22
39|27|9|Lons-le-Saunier|39300|39000|895|6623|16
40|75|16|Capbreton|40065|40130|343|6292|18
41|24|5|Vendôme|41269|41100|555|6746|16
42|84|25|Roanne|42187|42300|783|6550|23
43|84|7|Brioude|43040|43100|730|6466|18
44|52|41|Nantes|44109|44000|356|6689|20
45|24|24|Olivet|45232|45160|619|6750|23
46|76|4|Cuzance|46086|46600|585|6430|20
47|75|13|Agen|47001|47000|510|6347|17
48|76|1|Saint-Chély-d'Apcher|48140|48200|722|6412|10
49|52|21|Cholet|49099|49300|405|6668|21
50|28|18|Avranches|50025|50300|379|6850|30
51|44|17|Reims|51454|51100|775|6907|18
52|44|2|Chaumont|52121|52000|859|6782|18
53|52|8|Craon|53084|53400|404|6757|16
54|44|38|Nancy|54395|54000|934|6848|16
55|44|1|Ménil-sur-Saulx|55335|55500|863|6839|10
56|53|31|Vannes|56260|56000|267|6745|21
57|44|18|Metz|57463|57000|933|6895|22
58|27|5|Cosne-Cours-sur-Loire|58086|58200|694|6700|28
59|32|62|Valenciennes|59606|59300|737|7029|27
60|32|40|Compiègne|60159|60200|686|6923|12
61|28|8|Alençon|61001|61000|484|6818|25
62|32|36|Courrières|62250|62710|697|7041|29
63|84|14|Clermont-Ferrand|63113|63000|707|6519|18
64|75|23|Pau|64445|64000|428|6251|30
65|76|5|Bagnères-de-Bigorre|65059|65200|468|6223|7
66|76|5|Cabestany|66028|66330|693|6177|12
67|44|69|Geispolsheim|67152|67118|1046|6835|11
68|44|113|Colmar|68066|68000|1024|6784|6
69|84|54|Lyon|69382|69002|843|6520|9
70|27|11|Gray|70279|70100|895|6708|28
71|27|20|Autun|71014|71400|799|6651|25
72|52|20|Le Mans|72181|72000|491|6770|14
73|84|22|Chambéry|73065|73000|927|6501|19
74|84|39|Annecy|74010|74000|942|6539|18
75|11|154|Paris|75108|75008|652|6863|2
76|28|85|Sasseville|76664|76450|533|6968|25
77|11|37|Claye-Souilly|77118|77410|674|6871|18
78|11|26|Saint-Germain-en-Laye|78551|78100|633|6867|12
79|75|11|Niort|79191|79000|435|6587|22
80|32|9|Amiens|80021|80000|650|6976|19
81|76|11|Albi|81004|81000|632|6315|15
82|76|8|Montauban|82121|82000|569|6326|10
83|93|24|Saint-Raphaël|83118|83700|1006|6267|24
84|93|26|Avignon|84007|84000|847|6317|19
85|52|9|Fontenay-le-Comte|85092|85200|409|6603|28
86|75|22|Châtellerault|86066|86100|513|6639|10
87|75|13|Limoges|87085|87000|566|6530|10
88|44|8|Épinal|88160|88000|957|6793|22
89|27|9|Avallon|89025|89200|768|6710|18
90|27|2|Belfort|90010|90000|989|6735|9
91|11|20|Massy|91377|91300|648|6847|10
92|11|56|Sèvres|92072|92310|643|6859|4
93|11|44|Saint-Denis|93066|93210|653|6868|4
94|11|29|Thiais|94073|94320|654|6852|4
95|11|26|Enghien-les-Bains|95210|95880|649|6875|7
972|02|1|Sainte-Marie|97228|97230|716|1635|10
974|04|2|Saint-Paul|97415|97434|315|7672|14
"""
# Street names for addresses (generic ones found in most French communes).
STREETS = (
    "Rue de la République", "Avenue Jean Jaurès", "Rue Victor Hugo", "Place de la Mairie",
    "Boulevard Gambetta", "Rue du Général de Gaulle", "Avenue de la Gare", "Rue Pasteur",
    "Rue de l'Église", "Route Nationale", "Rue des Écoles", "Avenue du Maréchal Foch",
    "Rue Jean Moulin", "Chemin des Vignes", "Rue du Moulin", "Place du Marché", "Rue de Paris",
    "Avenue de Verdun", "Rue Nationale", "Rue de la Gare", "Quai de la Loire",
    "Allée des Tilleuls", "Rue du Stade", "Avenue Albert Einstein",
)  # fmt: skip
BAN_NULL_RATE = 0.002
STREET_NULL_RATE = 0.136  # then N°_voie is null too
HOUSE_NUMBER_NULL_RATE = 0.09  # among records with a street
GEOCODED_RATE = 0.82
# Optional address complements: (rate of presence, values, weights).
FLOORS = (0.816, ("0", "1", "-1", "4", "5"), (1787, 5, 1, 1, 1))
RESIDENCES = (
    0.052,
    ("Bâtiment", "Immeuble", "CENTRE COMMERCIAL", "LE BOURG", "Résidence Les Tilleuls",
     "Zone artisanale", "Parc d'activités"),
    (12, 4, 6, 2, 2, 2, 2),
)  # fmt: skip
COMPLEMENTS_LOGEMENT = (
    0.399,
    ("Ce bien ne fait pas partie d'une copropriété", "Bat. N/A; Etage null; Porte NC",
     "Etage RDC", "RDC", "Etage :", "Etage : NC", "Etage 1", "Etage : Rdc",
     "Local commercial", "Etage 2"),
    (154, 96, 64, 51, 27, 24, 16, 12, 11, 10),
)  # fmt: skip
COMPLEMENT_BATIMENT_RATE = 0.19
STAIRCASES = (0.002, ("Sans objet", "E", "1", "SO"), (2, 1, 1, 1))
COPROPRIETE_RATE = 0.003
INVARIANTS = (0.003, ("0", "NC", "Non communiqué", "93310695024"), (2, 2, 1, 1))
IMMEUBLE_ASSOCIE_RATE = 0.002

# N°DPE = YY (year established) + département (2 chars) + "T" + 7 digits + a letter. The
# letter and digits encode a permutation of (seed, row), so numbers never repeat within a
# seed, nor across seeds 0..129 for up to 2,000,000 rows each.
ID_SPACE = 26 * 10**7
ID_MULTIPLIER = 179_424_673  # prime, coprime with ID_SPACE: a bijection of [0, ID_SPACE)
ID_OFFSET = 1_234_567
ID_SEED_STRIDE = 2_000_000
