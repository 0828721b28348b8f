"""Home's ingest progress is core's own `(fraction, message)`, polled from a worker thread."""

import threading

from tests.support.pages import settings_for
from tooling.synth import write_csv
from ui import ingest_run


def test_the_bar_follows_the_ingest_steps(tmp_path, monkeypatch):
    seen: list[tuple[float, str, str]] = []

    class Recorded(ingest_run.Reported):
        def __call__(self, fraction: float, message: str) -> None:
            seen.append((fraction, message, threading.current_thread().name))
            super().__call__(fraction, message)

    monkeypatch.setattr(ingest_run, "Reported", Recorded)
    settings = settings_for(tmp_path / "home")
    settings.home.mkdir()
    csv_path = write_csv(tmp_path / "export.csv", 300, seed=2)
    result = ingest_run.ingest_source(settings, str(csv_path), None, "Ingesting")
    assert result["rows"] == 300
    fractions = [fraction for fraction, _, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert len(seen) >= 4 and any("cleaning" in message for _, message, _ in seen)
    # Reported from the worker, never from the page's own thread.
    assert threading.current_thread().name not in {thread for _, _, thread in seen}
