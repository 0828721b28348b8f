"""One champion truth: the MLflow registry alias `champion` decides, the store follows.

`sync_champion` compares the version the alias points at with the store's manifest and,
when they differ, exports that version (the promotion's export: files, then manifest), so an
alias moved anywhere (workbench, CLI, the MLflow UI) reaches the API, which hot-swaps on the
manifest. `watch_champion` does it every few seconds (`python -m core sync --watch 5`).
"""

import logging
import threading
from dataclasses import dataclass
from typing import Literal

from core.config import Settings
from core.errors import DpeError
from core.storage import Store
from core.tracking.champion_store import MANIFEST_PATH, current
from core.tracking.registry import champion_version, connect, export_version, mlflow_errors

log = logging.getLogger(__name__)


SyncStatus = Literal["published", "in_sync", "no_champion"]


@dataclass(frozen=True)
class SyncResult:
    """`published`: the manifest now names the alias's version; `in_sync`: it already did;
    `no_champion`: no version carries the alias (the manifest is left as it is)."""

    status: SyncStatus
    registered_model: str
    model_version: str | None
    manifest: str


def sync_champion(settings: Settings) -> SyncResult:
    """Make the store's manifest name the version the alias `champion` points at."""
    client = connect(settings)
    store = Store(settings)
    name = settings.registered_model_name
    with mlflow_errors(settings):
        version = champion_version(client, name)
    manifest = current(store)
    status: SyncStatus
    if version is None:
        status = "no_champion"
    elif manifest and (manifest.registered_model, manifest.model_version) == (name, version):
        status = "in_sync"
    else:
        export_version(settings, client, store, version)
        log.info("sync: %s version %s published to %s", name, version, store.uri())
        status = "published"
    return SyncResult(status, name, version, store.uri(MANIFEST_PATH))


def watch_champion(
    settings: Settings, interval_s: float, stop: threading.Event | None = None
) -> None:
    """`sync_champion` every `interval_s` until `stop` is set; an unreachable MLflow server
    or store is logged (once per distinct problem) and tried again at the next pass."""
    stop = stop or threading.Event()
    problem = None
    while not stop.is_set():
        try:
            sync_champion(settings)
            if problem is not None:
                log.info("sync: recovered")
            problem = None
        except DpeError as error:
            if str(error) != problem:
                log.warning("sync: %s (retrying every %s s)", error, interval_s)
            problem = str(error)
        stop.wait(interval_s)
