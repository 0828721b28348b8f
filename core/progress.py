"""The one progress protocol of long work (ingest, training, batch prediction).

A `Progress` is called with the fraction done (0 to 1) and a short message. It is called
in the process doing the work: code that fans out to worker processes reports between
their results, never by sending the callback to them (a Streamlit element cannot be
pickled into a worker).
"""

import logging
from collections.abc import Callable

Progress = Callable[[float, str], None]


def no_progress(fraction: float, message: str) -> None:
    """The default: nobody is watching."""


def logged(step: str, progress: Progress | None, logger: logging.Logger) -> Progress:
    """`progress`, also written to `logger` (stderr for the CLI) as `step [ 43%] message`."""

    def report(fraction: float, message: str) -> None:
        logger.info("%s [%3.0f%%] %s", step, 100 * fraction, message)
        if progress is not None:
            progress(fraction, message)

    return report
