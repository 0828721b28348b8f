"""A trained model's card: what it is, how it did on records newer than its training (the
back-test headline first), what its label sets mean; logged as `model_card.md` and as the
run's description in the MLflow UI. And the scale shares of a scale-mixture model, logged as
`scale_shares.json` so what a prediction is explained with can be inspected."""

from core.modeling.rules import SCALE_FAMILIES, ScaleMixtureClassifier
from core.modeling.scales import FAMILIES
from core.tracking.headline import BACKTEST_HEADLINE

NAMES = {
    "accuracy": "accuracy",
    "macro_f1": "macro-F1",
    "coverage": "set coverage",
    "mean_set_size": "mean set size",
}


def scale_shares(model) -> dict | None:
    """{"sectors": {sector: {"records", "shares": {scale: share}}}, "overall": {...},
    "unseen": {regulatory scale: {...}}} of a scale-mixture pipeline; None for other models."""
    classifier = model.steps[-1][1] if hasattr(model, "steps") else model
    if not isinstance(classifier, ScaleMixtureClassifier):
        return None

    def named(shares) -> dict[str, float]:
        return {
            family: round(float(share), 4)
            for family, share in zip(SCALE_FAMILIES, shares, strict=True)
        }

    return {
        "sectors": {
            key: {"records": classifier.records_[key], "shares": named(shares)}
            for key, shares in sorted(classifier.shares_.items())
        },
        "overall": named(classifier.overall_shares_),
        "unseen": {family: named(s) for family, s in classifier.unseen_shares_.items()},
    }


def model_card(result: dict, shares: dict | None = None) -> str:
    """The card of a `core.modeling.train.train` result (with its params), as markdown."""
    metrics, headline = result["metrics"], result.get("headline")
    lines = [
        f"# {result['model']} on `{result['feature_set']}`",
        "",
        f"Dataset `{result['dataset_version']}`: {result['train_rows']:,} training records, "
        f"tested on the {result['test_rows']:,} newest ({result['test_from']} to "
        f"{result['test_to']}, {result['split']} split).",
        "",
        "## On records newer than its training",
    ]
    if headline:
        windows = result["backtest"]
        lines += [
            "",
            f"Back-test: {len(windows)} windows from {windows[0]['test_from']} to "
            f"{windows[-1]['test_to']}, each scored by a model calibrated and trained on the "
            "records before it (these hyper-parameters, no search). Mean (range over windows):",
            "",
            "| | this model | rules |",
            "|---|---|---|",
        ]
        for name in BACKTEST_HEADLINE:
            cells = [_range(metrics, f"backtest_{who}{name}") for who in ("", "rules_")]
            lines.append(f"| {NAMES[name]} | {cells[0]} | {cells[1]} |")
    else:
        lines += ["", "No back-test: the records have too few dates."]
    lines += [
        "",
        "Time split (one window, the newest records): "
        + ", ".join(
            f"{NAMES[name]} {metrics[name]:.3f}" for name in BACKTEST_HEADLINE if name in metrics
        )
        + ".",
        "",
        "## Label sets",
        "",
    ]
    calibration = result.get("calibration")
    if calibration:
        lines.append(
            f"Calibrated ({calibration['method']}) on {calibration['rows']:,} training records "
            f"from {calibration['calibrated_from']} to {calibration['calibrated_to']}, by a copy "
            f"of the model fitted on the older ones (to {calibration['fitted_to']}). At coverage "
            "0.90, at least 90 % of the sets of records like those (newer than the fit) hold "
            "the true label: over records, not for each one, and less if the use of the "
            "scales shifts again (the realised coverage is watched as labels arrive)."
        )
    else:
        lines.append("None: the training records could not be cut by date to calibrate them.")
    if shares:
        lines += ["", "## Scale use per sector (P(scale | sector), training records)", ""]
        lines += ["| sector | records | " + " | ".join(FAMILIES) + " |"]
        lines += ["|---|---|" + "---|" * len(FAMILIES)]
        for sector, entry in shares["sectors"].items():
            shown = " | ".join(f"{entry['shares'][f]:.0%}" for f in FAMILIES)
            lines.append(f"| {sector} | {entry['records']} | {shown} |")
    return "\n".join(lines) + "\n"


def _range(metrics: dict, key: str) -> str:
    if key not in metrics:
        return "—"
    return f"{metrics[key]:.3f} ({metrics[key + '_min']:.3f}–{metrics[key + '_max']:.3f})"
