"""Temporary folders named after the process that made them (`dpe-<kind>-<pid>-…` in the
system's temporary directory), so that what a killed process left behind (`kill -9` during
an upload: its spooled copy) can be told from what a running one uses, and removed.
"""

import logging
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

log = logging.getLogger(__name__)

_NAME = re.compile(r"dpe-[a-z]+-(\d+)-")
_STARTED = time.time()  # when this process imported us: before it made any folder


def _prefix(kind: str) -> str:
    return f"dpe-{kind}-{os.getpid()}-"


def temporary_dir(kind: str) -> tempfile.TemporaryDirectory:
    """A `with` block's temporary folder, removed at its end."""
    return tempfile.TemporaryDirectory(prefix=_prefix(kind))


def make_dir(kind: str) -> Path:
    """A temporary folder the caller removes (e.g. once an answer is sent from it)."""
    return Path(tempfile.mkdtemp(prefix=_prefix(kind)))


def remove_left_behind(parent: Path | None = None) -> list[Path]:
    """Remove the folders of processes that no longer run: another process's whose pid is
    gone, and this pid's from before this process started (a container restarted after a
    kill often gets the same pid). Returns what was removed."""
    parent = parent or Path(tempfile.gettempdir())
    removed = []
    for path in parent.glob("dpe-*-*-*"):
        match = _NAME.match(path.name)
        if not match or not path.is_dir() or _in_use(int(match[1]), path):
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    if removed:
        log.info("removed %d temporary folder(s) left by stopped processes", len(removed))
    return removed


def _in_use(pid: int, path: Path) -> bool:
    if pid == os.getpid():
        try:
            return path.stat().st_mtime >= _STARTED
        except FileNotFoundError:
            return True  # removed meanwhile: nothing to do
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's running process
        return True
    return True
