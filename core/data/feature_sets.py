"""The feature sets: which record fields a model reads. Every fact about them lives here."""

from dataclasses import dataclass

from core.data.schema import RECORD_FIELDS
from core.errors import DpeError

CONSUMPTION = "conso_kwhep_m2_an"
CONSUMPTION_FIELDS = (CONSUMPTION, "emission_ges_kgco2_m2_an", "conso_e_finale_energie_n_1")
BUILDING_FIELDS = tuple(name for name in RECORD_FIELDS if name not in CONSUMPTION_FIELDS)


@dataclass(frozen=True)
class FeatureSet:
    name: str
    fields: tuple[str, ...]
    description: str

    @property
    def has_consumption(self) -> bool:
        """The label is a threshold of the consumption, by regulation: such a set leaks it."""
        return CONSUMPTION in self.fields

    @property
    def leaks_label(self) -> bool:
        return self.has_consumption

    @property
    def baseline(self) -> str:
        """What a learned model on this set must beat: the official scales when the
        consumption is known, else the most frequent label."""
        return "rules" if self.has_consumption else "majority"


BUILDING_ONLY = FeatureSet(
    "building-only", BUILDING_FIELDS, "what a manager knows before any diagnostic"
)
WITH_CONSUMPTION = FeatureSet(
    "with-consumption",
    BUILDING_FIELDS + CONSUMPTION_FIELDS,
    "the workshop's: includes the consumption, of which the label is a threshold (leaks it)",
)
FEATURE_SETS = {feature_set.name: feature_set for feature_set in (BUILDING_ONLY, WITH_CONSUMPTION)}


def feature_set(name: str) -> FeatureSet:
    """The feature set called `name`; DpeError naming the choices otherwise."""
    try:
        return FEATURE_SETS[name]
    except KeyError:
        raise DpeError(
            f"unknown feature set {name!r}: choose one of {', '.join(FEATURE_SETS)}"
        ) from None
