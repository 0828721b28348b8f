"""Synthetic ADEME « DPE tertiaire » records in the official 63-column format.

The generator makes the fixtures of the tests that must pass on a fresh clone and the
1M-row data of the benchmarks, so it must look like what ADEME serves: official column
names and order, text where the export holds text, codes with their leading zeros,
ISO dates, nulls and placeholders at the real rates, labels on the official scales.

Every constant below was measured once on the real 2,200-record sample
(`../shared/data/dpe_tertiaire_sample.csv`, pulled March–April 2024); they live in the
code because a fresh clone has no access to that sample.

How a record is drawn (all vectorised with numpy, block by block):
1. its kind: (Version_DPE, Méthode_du_DPE, status) from their joint frequencies, where the
   status is `measured` (a real consumption and label), `placeholder` (consumption 0.1,
   label A: « vierge » diagnostics and many v1.0 ones) or `unlabelled` (no consumption);
2. the building (sector, ERP category, period, year, surfaces, occupants) given the status;
3. its energies, then its consumption: a heavy-tailed distribution matching the real one,
   shifted a little by sector, period, main energy, surface and « neuf », so building-only
   features carry some signal, as they do in the real data;
4. its labels: a scale family drawn given the sector (the real labels often follow
   another family than the one the regulation assigns), then the official thresholds.

Blocks of `BLOCK_ROWS` rows each have their own random stream, seeded by (seed, block):
the same (n, seed) gives the same records whether generated at once or written in chunks.
"""

import argparse
import csv
import logging
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import ndtr

from core.errors import DpeError
from core.scales import FAMILIES, LABELS, family_for_sector, label_index
from core.schema import (
    CATEGORIES_ERP,
    COLUMNS,
    ENERGIES,
    METHODES,
    PERIODES,
    SECTEURS,
    USAGES,
)

log = logging.getLogger(__name__)

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


# ---------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------


def generate_records(
    n: int,
    seed: int = 0,
    *,
    sector_weights: dict[str, float] | None = None,
    surface_scale: float = 1.0,
) -> pd.DataFrame:
    """`n` synthetic records in the official 63-column format (official names and order).

    Text columns are object columns of str (null: None), number columns float64 (null: NaN).
    `sector_weights` replaces the sector distribution (any sector name, weights >= 0), and
    `surface_scale` multiplies every surface (the 100.0 placeholder too, so a shifted set
    differs on every record): both make shifted data for drift tests.
    """
    blocks = list(_blocks(n, seed, sector_weights, surface_scale))
    if not blocks:
        return _empty_frame()
    return pd.concat(blocks, ignore_index=True)


def write_csv(
    path,
    n: int,
    seed: int = 0,
    *,
    chunk_rows: int = 200_000,
    sector_weights: dict[str, float] | None = None,
    surface_scale: float = 1.0,
) -> Path:
    """Write `generate_records(n, seed, ...)` as an ADEME CSV export (UTF-8, `,`, quoted
    where needed), `chunk_rows` records at a time so memory stays flat whatever `n`."""
    blocks = _blocks(n, seed, sector_weights, surface_scale)
    # Chunks are whole blocks, so the file is the same whatever chunk_rows.
    blocks_per_chunk = max(1, math.ceil(chunk_rows / BLOCK_ROWS))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pending: list[pd.DataFrame] = []
    written = 0
    with path.open("w", encoding="utf-8", newline="") as handle:
        _csv_frame(_empty_frame()).to_csv(handle, index=False, lineterminator="\n")
        for block in blocks:
            pending.append(block)
            if len(pending) == blocks_per_chunk:
                written += _append_csv(handle, pending)
                log.info("generate: %d / %d rows", written, n)
                pending = []
        if pending:
            written += _append_csv(handle, pending)
    log.info("generate: %d rows written to %s", written, path)
    return path


def to_api_pages(
    frame: pd.DataFrame, page_size: int = 100, base_url: str = "http://127.0.0.1/lines"
) -> list[dict]:
    """Split records into ADEME data-fair API pages: `{"total", "next", "results"}`.

    As the API does, a null field is absent from its record, integers are JSON integers, and
    `next` is the cursor URL of the following page (None on the last one). Each record
    carries `_i`, the position the cursor points after.
    """
    if page_size < 1:
        raise ValueError("page_size must be >= 1")
    records = _api_records(frame)
    pages = []
    for start in range(0, len(records), page_size):
        results = records[start : start + page_size]
        last = start + page_size >= len(records)
        cursor = results[-1]["_i"]
        next_url = None if last else f"{base_url}?size={page_size}&format=json&after={cursor}"
        pages.append({"total": len(records), "next": next_url, "results": results})
    return pages or [{"total": 0, "next": None, "results": []}]


def add_cli(subparsers) -> None:
    parser = subparsers.add_parser(
        "generate", help="write synthetic ADEME records (official CSV format) for tests/benchmarks"
    )
    parser.add_argument("--rows", type=int, required=True, help="number of records")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--output", type=Path, required=True, help="CSV file to write")
    parser.set_defaults(run=_run_generate)


def _run_generate(args: argparse.Namespace, settings) -> dict:
    if args.rows < 0 or args.seed < 0:
        raise DpeError("--rows and --seed must be >= 0")
    path = write_csv(args.output, args.rows, args.seed)
    return {"rows": args.rows, "path": str(path)}


# ---------------------------------------------------------------------------------------
# Blocks
# ---------------------------------------------------------------------------------------


def _blocks(n, seed, sector_weights, surface_scale) -> Iterator[pd.DataFrame]:
    """The records block by block; arguments are checked now, before any block is made."""
    if n < 0 or seed < 0:
        raise ValueError("n and seed must be >= 0")
    if not surface_scale > 0:
        raise ValueError("surface_scale must be > 0")
    return _generate_blocks(n, seed, _sector_choice(sector_weights), surface_scale)


def _generate_blocks(n, seed, sectors, surface_scale) -> Iterator[pd.DataFrame]:
    for start in range(0, n, BLOCK_ROWS):
        rng = np.random.default_rng([seed, start // BLOCK_ROWS])
        rows = np.arange(start, min(n, start + BLOCK_ROWS), dtype=np.int64)
        yield _block(rng, seed, rows, sectors, surface_scale)


def _block(rng, seed, rows, sectors, surface_scale) -> pd.DataFrame:
    n = len(rows)
    version, methode, status = _draw_kind(rng, n)
    building = _draw_building(rng, status, version, methode, sectors, surface_scale)
    energies = _draw_energies(rng, status)
    performance = _draw_performance(rng, status, methode, building, energies)
    dates = _draw_dates(rng, version)
    location = _draw_location(rng, n)
    columns = {
        **_admin_columns(rng, seed, rows, version, methode, dates, location),
        **dates.columns,
        **performance,
        **building.columns,
        **_heating_column(rng, status, version, energies),
        **location.columns,
        **_energy_columns(rng, status, building, energies, performance, dates),
    }
    return pd.DataFrame({name: _column(name, columns[name]) for name in OFFICIAL_COLUMNS})


def _column(name, values) -> pd.Series:
    if name in NUMBER_COLUMNS:
        return pd.Series(np.asarray(values, dtype=float))
    # Object columns of Python str: building Arrow strings would double the generation time.
    return pd.Series(np.asarray(values, dtype=object), dtype=object)


def _empty_frame() -> pd.DataFrame:
    return pd.DataFrame({name: _column(name, []) for name in OFFICIAL_COLUMNS})


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


def _optional(rng, spec, n) -> np.ndarray:
    rate, values, weights = spec
    return _nulled(rng, _pick(rng, values, weights, n), 1 - rate)


def _sector_choice(sector_weights):
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


def _draw_kind(rng, n):
    kinds = rng.choice(len(KINDS), size=n, p=_normalised([k[3] for k in KINDS]))
    version = np.array([k[0] for k in KINDS])[kinds]
    methode = np.array([k[1] for k in KINDS], dtype=object)[kinds]
    status = np.array([k[2] for k in KINDS], dtype=np.int8)[kinds]
    return version, methode, status


def _normalised(weights) -> np.ndarray:
    weights = np.asarray(weights, dtype=float)
    return weights / weights.sum()


class _Parts:
    """Columns of a record part, plus values later parts need."""

    def __init__(self, columns: dict, **values):
        self.columns = columns
        self.__dict__.update(values)


def _draw_building(rng, status, version, methode, sectors, surface_scale) -> _Parts:
    n = len(status)
    sector = np.empty(n, dtype=object)
    periode_index = np.empty(n, dtype=np.int64)
    for value in range(3):
        mask = status == value
        names, weights = sectors[value]
        sector[mask] = _pick(rng, names, weights, mask.sum())
        periode_index[mask] = rng.choice(
            len(PERIODES), mask.sum(), p=_normalised(PERIOD_COUNTS[value])
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
    return _Parts(columns, sector=sector, periode_index=periode_index, area=area)


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
    year[rng.random(n) < _per_version(version, YEAR_NULL)] = np.nan
    return year


def _draw_surfaces(rng, version, surface_scale):
    """(building area, Surface_utile, Surface_(SHON)): the area is what SHON records;
    Surface_utile is mostly the 100.0 placeholder, else mostly the area itself."""
    n = len(version)
    area = np.exp(_from_quantiles(rng.random(n), LOG_AREA_QUANTILES)).round(1).clip(1.0)
    # Large buildings get the placeholder less often (55 % above 2,000 m², 87 % below).
    placeholder_rate = _per_version(version, SURFACE_100) * np.where(
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
    occupants[rng.random(n) < _per_version(version, OCCUPANT_NULL)] = np.nan
    return occupants


def _per_version(version, field, dtype=float) -> np.ndarray:
    """Field `field` of `VERSIONS` for each record's version."""
    values = np.empty(len(version), dtype=object)
    for key, row in VERSIONS.items():
        values[version == key] = row[field]
    return values.astype(dtype)


NO_ENERGY = -1
_ENERGY_NAMES = np.asarray([*ENERGY_TABLE, None], dtype=object)  # code -1 is the last: None


def _draw_energies(rng, status) -> _Parts:
    """Energies n°1..3 as codes into ENERGY_TABLE (NO_ENERGY when absent), and their shares."""
    n = len(status)
    counts = list(zip(*ENERGY_TABLE.values(), strict=True))
    kinds = np.arange(len(ENERGY_TABLE))
    measured = status == MEASURED
    e1, e2, e3 = (np.full(n, NO_ENERGY, dtype=np.int64) for _ in range(3))
    e1[measured] = rng.choice(kinds, measured.sum(), p=_normalised(counts[AS_FIRST]))
    e1[status == PLACEHOLDER] = ELECTRICITY  # placeholders always declare electricity only
    # A second energy is mostly another one after electricity, electricity after another.
    for is_electricity, column, without in (
        (True, AFTER_ELECTRICITY, NO_SECOND_ENERGY[0]),
        (False, AFTER_OTHER, NO_SECOND_ENERGY[1]),
    ):
        mask = measured & ((e1 == ELECTRICITY) == is_electricity)
        weights = _normalised((*counts[column], without))
        e2[mask] = rng.choice(np.append(kinds, NO_ENERGY), mask.sum(), p=weights)
    has_second = e2 != NO_ENERGY
    has_third = has_second & (rng.random(n) < THIRD_ENERGY_RATE)
    e3[has_third] = rng.choice(kinds, has_third.sum(), p=_normalised(counts[AS_THIRD]))
    # Shares of the primary consumption: the first energy dominates.
    share1 = np.where(has_second, rng.uniform(0.35, 0.95, n), 1.0)
    share3 = np.where(has_third, (1 - share1) * rng.uniform(0.1, 0.5, n), 0.0)
    share2 = np.where(has_second, 1 - share1 - share3, 0.0)
    return _Parts({}, codes=(e1, e2, e3), shares=(share1, share2, share3))


def _energy_value(codes, field, default=0.0) -> np.ndarray:
    """Field `field` of `ENERGY_TABLE` for each energy code (default where there is none)."""
    values = [row[field] for row in ENERGY_TABLE.values()]
    return np.asarray([*values, default], dtype=float)[codes]


def _draw_performance(rng, status, methode, building, energies) -> dict:
    n = len(status)
    score = _consumption_score(building, energies.codes[0], methode)
    z = (score + rng.normal(0.0, SCORE_NOISE_SD, n)) / LOG_CONSO_SD
    conso = np.exp(np.interp(ndtr(z), *zip(*LOG_CONSO_QUANTILES, strict=True))).round(1)
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
        family[mask] = rng.choice(len(FAMILIES), mask.sum(), p=_normalised(mix))
    letters = np.asarray(LABELS, dtype=object)
    label, ges_label = (np.full(n, None, dtype=object) for _ in range(2))
    for index, name in enumerate(FAMILIES):
        mask = (family == index) & ~np.isnan(conso)
        label[mask] = letters[label_index(conso[mask], name).astype(int)]
        ges_label[mask] = letters[label_index(ges[mask], name, "ges").astype(int)]
    return label, ges_label


def _heating_column(rng, status, version, energies) -> dict:
    """Type_énergie_principale_chauffage: rare, only on labelled records, mostly energy n°1."""
    n = len(status)
    e1, e2, _ = energies.codes
    present = (status != UNLABELLED) & (rng.random(n) < _per_version(version, HEATING))
    heating = np.where((e2 != NO_ENERGY) & (rng.random(n) < 0.2), e2, e1)
    return {"Type_énergie_principale_chauffage": _ENERGY_NAMES[np.where(present, heating, -1)]}


def _energy_columns(rng, status, building, energies, performance, dates) -> dict:
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


def _draw_dates(rng, version) -> _Parts:
    """ISO dates: established within the version's period, visited before, received the
    next day (mostly), valid ten years less a day."""
    n = len(version)
    first = _per_version(version, FIRST_ESTABLISHED, "datetime64[D]")
    last = _per_version(version, LAST_ESTABLISHED, "datetime64[D]")
    span = (last - first).astype(np.int64) + 1
    established = first + (rng.random(n) * span).astype(np.int64)
    # A third visit and establish within a day; the others weeks or months apart.
    same_days = rng.random(n) < 0.35
    delay = np.where(same_days, rng.integers(0, 2, n), np.minimum(rng.exponential(90, n), 900))
    visited = established - delay.astype(np.int64)
    days_to_receive = rng.choice(RECEPTION_DAYS, n, p=_normalised(RECEPTION_COUNTS))
    received = established + days_to_receive
    valid_until = _plus_ten_years(established) - 1
    columns = {
        "Date_réception_DPE": _iso(received),
        "Date_établissement_DPE": _iso(established),
        "Date_visite_diagnostiqueur": _iso(visited),
        "Date_fin_validité_DPE": _iso(valid_until),
    }
    year = established.astype("datetime64[Y]").astype(np.int64) + 1970
    return _Parts(columns, year=year)


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


def _parse_departments() -> dict[str, np.ndarray]:
    """DEPARTMENTS as columns. Text columns are object arrays so records share their str."""
    rows = [line.split("|") for line in DEPARTMENTS.strip().splitlines()]
    codes, regions, counts, communes, insee, postal, x, y, spread = zip(*rows, strict=True)
    table = {
        "code": codes,
        "region": regions,
        "commune": communes,
        "commune_upper": [commune.upper() for commune in communes],
        "insee": insee,
        "postal": postal,
        "postal_raw": [str(int(code)) for code in postal],  # the raw field drops the 0
        "dpe_department": [code[:2] for code in postal],  # Corsica is « 20 » in N°DPE
    }
    table = {key: np.asarray(values, dtype=object) for key, values in table.items()}
    table["weight"] = _normalised(np.asarray(counts, dtype=float))
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


def _draw_location(rng, n) -> _Parts:
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
    return _Parts(columns, dpe_department=table["dpe_department"][d])


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
        "N°_étage_appartement": _optional(rng, FLOORS, n),
        "Nom_résidence": _optional(rng, RESIDENCES, n),
        "Complément_d'adresse_bâtiment": building,
        "Cage_d'escalier": _optional(rng, STAIRCASES, n),
        "Complément_d'adresse_logement": _optional(rng, COMPLEMENTS_LOGEMENT, n),
    }


def _admin_columns(rng, seed, rows, version, methode, dates, location) -> dict:
    n = len(rows)
    department = location.dpe_department
    year = dates.year
    number = _dpe_numbers(year, department, _id_sequence(seed, rows))
    # A replaced diagnostic is an older one (same year or the one before).
    older = np.maximum(year - rng.integers(0, 2, n), 2021)
    replaced = np.full(n, None, dtype=object)
    mask = rng.random(n) < _per_version(version, REPLACED)
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
        "Invariant_fiscal_logement": _optional(rng, INVARIANTS, n),
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


# ---------------------------------------------------------------------------------------
# Output formats
# ---------------------------------------------------------------------------------------


def _csv_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Integer columns printed as ADEME prints them (2007, not 2007.0)."""
    return frame.astype({name: "Int64" for name in INTEGER_COLUMNS if name in frame})


def _append_csv(handle, blocks: list[pd.DataFrame]) -> int:
    frame = pd.concat(blocks, ignore_index=True)
    _csv_frame(frame).to_csv(
        handle, header=False, index=False, lineterminator="\n", quoting=csv.QUOTE_MINIMAL
    )
    return len(frame)


def _api_records(frame: pd.DataFrame) -> list[dict]:
    columns = {name: _api_values(name, frame[name]) for name in frame.columns}
    records = []
    for position in range(len(frame)):
        record = {}
        for name, values in columns.items():
            value = values[position]
            if value is not None:
                record[name] = value
        record["_i"] = position + 1
        records.append(record)
    return records


def _api_values(name: str, series: pd.Series) -> list:
    """JSON-ready values of one column, None for nulls."""
    values = series.astype(object).where(series.notna(), None).tolist()
    if name in INTEGER_COLUMNS:
        return [None if v is None else int(v) for v in values]
    if name in NUMBER_COLUMNS:
        return [None if v is None else float(v) for v in values]
    if name in API_INTEGER_TEXT:
        return [int(v) if isinstance(v, str) and v.lstrip("-").isdigit() else v for v in values]
    return values
