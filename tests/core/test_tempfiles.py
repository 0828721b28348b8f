"""core.tempfiles: temporary folders named after their process; what dead processes left is
removed, what running ones use is kept."""

import os
import subprocess
import sys
import time

from core import tempfiles


def test_only_the_folders_of_processes_that_stopped_are_removed(tmp_path):
    dead_pid = subprocess.Popen([sys.executable, "-c", "pass"])
    dead_pid.wait()
    running = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        folders = {
            "killed": tmp_path / f"dpe-api-{dead_pid.pid}-a1b2",
            "ours before a restart": tmp_path / f"dpe-csv-{os.getpid()}-c3d4",
            "ours": tmp_path / f"dpe-csv-{os.getpid()}-e5f6",
            "running": tmp_path / f"dpe-api-{running.pid}-g7h8",
            "not ours": tmp_path / "dpe-snapshot-x",
        }
        for folder in folders.values():
            folder.mkdir()
            (folder / "input.csv").write_text("spooled")
        # Made before this process started: a predecessor that had the same pid.
        past = time.time() - 3600
        os.utime(folders["ours before a restart"], (past, past))

        removed = tempfiles.remove_left_behind(tmp_path)

        assert sorted(removed) == sorted([folders["killed"], folders["ours before a restart"]])
        assert {name for name, folder in folders.items() if folder.exists()} == {
            "ours",
            "running",
            "not ours",
        }
    finally:
        running.kill()
        running.wait()


def test_folders_are_named_after_the_process(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfiles.tempfile, "tempdir", str(tmp_path))
    made = tempfiles.make_dir("api")
    with tempfiles.temporary_dir("csv") as folder:
        assert os.path.basename(folder).startswith(f"dpe-csv-{os.getpid()}-")
    assert made.name.startswith(f"dpe-api-{os.getpid()}-")
    assert tempfiles.remove_left_behind(tmp_path) == []  # ours, in use
