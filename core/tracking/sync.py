"""One champion truth: the MLflow registry alias `champion` decides, the store follows.

`sync_champion` compares the version the alias points at with the store's manifest and,
when they differ, exports that version (the promotion's export: files, then manifest), so an
alias moved anywhere (workbench, CLI, the MLflow UI) reaches the API, which hot-swaps on the
manifest. `watch_champion` does it every few seconds (`python -m core sync --watch 5`).

A version that promotion would refuse (another registered model's run, a run outside the
project's experiment or without the training tags, a pickle, untrusted types, unsafe trees:
`core.tracking.registry`) is refused the same way: Conflict with the reason, nothing written,
the store keeps its champion and the API keeps serving it. `watch_champion` remembers the
refused version and does not download it again until the alias moves.
"""

import logging
import threading
from dataclasses import dataclass
from typing import Literal

from core.config import Settings
from core.errors import Conflict, DpeError
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


def sync_champion(settings: Settings, refused: dict[str, str] | None = None) -> SyncResult:
    """Make the store's manifest name the version the alias `champion` points at; Conflict
    when that version is refused. `refused` ({version: reason}, kept by the caller between
    passes) names a version refused before: refused again without downloading it."""
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
    elif refused and version in refused:
        raise Conflict(refused[version])
    else:
        try:
            export_version(settings, client, store, version)
        except Conflict as error:
            if refused is not None:
                refused.clear()  # only the alias's current version is remembered
                refused[version] = str(error)
            raise
        log.info("sync: %s version %s published to %s", name, version, store.uri())
        status = "published"
    return SyncResult(status, name, version, store.uri(MANIFEST_PATH))


def watch_champion(
    settings: Settings, interval_s: float, stop: threading.Event | None = None
) -> None:
    """`sync_champion` every `interval_s` until `stop` is set. Logs only what changes: the
    champion it follows, a problem (an unreachable MLflow server or store, a refused
    version: once per distinct problem, tried again at the next pass), its recovery."""
    stop = stop or threading.Event()
    problem: str | None = None
    followed: str | None = ""  # "" until the first pass: None is "no champion"
    refused: dict[str, str] = {}
    while not stop.is_set():
        try:
            result = sync_champion(settings, refused)
            if problem is not None:
                log.info("sync: recovered")
            if result.model_version != followed and result.status != "published":
                log.info("sync: %s (%s)", result.status, _named(result))
            problem, followed = None, result.model_version
        except DpeError as error:
            if str(error) != problem:
                log.warning("sync: %s (retrying every %s s)", error, interval_s)
            problem = str(error)
        stop.wait(interval_s)


def _named(result: SyncResult) -> str:
    if result.model_version is None:
        return f"no version of {result.registered_model} is aliased champion"
    return f"{result.registered_model} version {result.model_version}"
