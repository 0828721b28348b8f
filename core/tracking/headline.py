"""The metrics every run is ranked and compared on (run lists, the gate, the workbench).

`HEADLINE`: the time split's metrics, as every run logs them. `BACKTEST_HEADLINE`: what a
user is shown first since runs carry a back-test (`core.modeling.evaluate.backtest_summary`):
the mean over the back-test windows of each, with its range (`backtest_<name>`,
`backtest_<name>_min`, `backtest_<name>_max`).
"""

HEADLINE = ("accuracy", "macro_f1", "balanced_accuracy", "log_loss")
BACKTEST_HEADLINE = ("accuracy", "macro_f1", "coverage", "mean_set_size")


def backtest_headline(metrics: dict) -> dict[str, dict[str, float]] | None:
    """{name: {"mean", "min", "max"}} of a run's back-test metrics; None for a run logged
    before runs carried a back-test."""
    found = {
        name: {
            "mean": metrics[f"backtest_{name}"],
            "min": metrics[f"backtest_{name}_min"],
            "max": metrics[f"backtest_{name}_max"],
        }
        for name in BACKTEST_HEADLINE
        if f"backtest_{name}" in metrics
    }
    return found or None
