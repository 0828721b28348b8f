"""What the rule models (`core.modeling.rules`) read of their fitted state to predict, with
numpy alone.

The sklearn classifiers inherit these classes; the API's quick start
(`core.serving.light_reader`) builds them from a skops file's JSON and arrays without
importing sklearn or pandas (~1.2 s), and `core.serving.rule_engines` predicts with either.
"""

from core.modeling.scales import FAMILIES, family_for_sector, sector_key

SCALE_FAMILIES = tuple(FAMILIES)
MIN_CONFIDENCE = 0.5  # a label predicted with less would not be the argmax for sure


class RuleState:
    """`RuleClassifier`'s state: `classes_`, `smoothing`, `fallback_label_` (the label
    answered without a consumption)."""


class SectorScaleState:
    """`SectorScaleClassifier`'s state: `classes_`, `prior_` (the training labels'
    frequencies), `family_by_sector_` and `confidence_by_sector_` (by `sector_key`)."""

    family_by_sector_: dict

    def family(self, secteur_activite: str | None) -> str:
        """The scale this model applies to a sector."""
        found = self.family_by_sector_.get(sector_key(secteur_activite))
        return found or family_for_sector(secteur_activite)


class ScaleMixtureState:
    """`ScaleMixtureClassifier`'s state: `classes_`, `smoothing`, `label_prior_` (the
    training labels' frequencies), `shares_` and `records_` (by `sector_key`),
    `unseen_shares_` (by the regulation's scale family)."""

    shares_: dict
    records_: dict
    unseen_shares_: dict

    def sector_shares(self, secteur_activite: str | None) -> tuple[dict[str, float], int]:
        """P(scale | sector) as {scale: share}, and the training records that taught it (0
        for a sector never seen: its shares are the scales' overall use)."""
        key = sector_key(secteur_activite)
        shares = self.shares_.get(key) if key is not None else None
        if shares is None:
            shares = self.unseen_shares_[family_for_sector(secteur_activite)]
        return dict(zip(SCALE_FAMILIES, shares, strict=True)), self.records_.get(key, 0)
