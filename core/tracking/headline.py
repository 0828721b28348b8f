"""The metrics every run is ranked and compared on (run lists, the gate, the workbench)."""

HEADLINE = ("accuracy", "macro_f1", "balanced_accuracy", "log_loss")
