"""The champion the API serves, kept fresh from the model store.

`refresh()` re-reads the manifest and, when a new champion was promoted, loads it and swaps
the reference in one assignment: a request holds the champion it started with until it ends,
so a swap never changes a model under a request. While the store cannot be read, or the
published files no longer match the manifest (re-hashed every `verify_interval_s`), the
champion already loaded keeps serving and the state says why (`/health`: degraded). A model
the loader refuses (Conflict: untrusted types, unsafe trees, not this project's model) is
never served, not even by the quick start, and not loaded again until the manifest changes.
"""

import asyncio
import gc
import logging
import threading
import time
from collections.abc import Iterable

from core.config import Settings
from core.errors import Conflict, DpeError
from core.serving.champion import Champion, PredictionSink, load_champion, serving_champions
from core.storage import Store
from core.tracking import champion_store

log = logging.getLogger(__name__)


def _settle_heap(swapped: bool) -> None:
    """Set what is loaded by now (modules, the champion) aside from the garbage collector
    (gc.freeze): its full collections otherwise walk all of it, ~200,000 objects, every few
    1,000-record requests (their answers outlive the request in the prediction log's queue),
    tens of milliseconds each. After a swap, what the champion before held is collected
    first."""
    if swapped:
        gc.unfreeze()
        gc.collect()
    gc.freeze()


class ServingState:
    def __init__(self, settings: Settings, sink: PredictionSink | None = None):
        self.settings = settings
        self.sink = sink
        self.champion: Champion | None = None
        self.load_seconds: float | None = None  # how long the served champion took to load
        self.problem: str | None = "loading the champion model"
        self._store: Store | None = None
        self._lock = threading.Lock()  # the watcher and /admin/reload never load at once
        self._verified_at = time.monotonic()  # a champion is verified when it is loaded
        self._refused: tuple[tuple, str] | None = None  # (manifest key, why) of a refused model

    def refresh(self) -> bool:
        """Load the store's champion if it is not the one served; True when it swapped."""
        with self._lock:
            current = self.champion
            try:
                store = self._store = self._store or Store(self.settings)
                manifest = champion_store.read_manifest(store)
                key = champion_store.manifest_key(manifest)
                if self._refused is not None and self._refused[0] == key:
                    return self._failed(self._refused[1])
                if (
                    current is not None
                    and not current.light  # served unchecked: load it checked
                    and key == champion_store.manifest_key(current.manifest)
                ):
                    self._verify(store, manifest)
                    self.problem = None
                    return False
                loading = time.monotonic()
                # With nothing served yet, serve at once (a forest without sklearn, else plain
                # sklearn), then with the engines checked: a cold start answers ~1 s sooner.
                champions: Iterable[Champion]
                if current is None:
                    champions = serving_champions(
                        manifest, store, self.sink, self.settings.set_coverage
                    )
                else:
                    champions = [
                        load_champion(self.settings, manifest, store=store, sink=self.sink)
                    ]
                for champion in champions:
                    self.champion, self.problem = champion, None
                    self._verified_at = time.monotonic()
                    self.load_seconds = self._verified_at - loading
                    log.info(
                        "serving champion %s (engines %s)", champion.model_version, champion.engines
                    )
                _settle_heap(swapped=current is not None)
            except Conflict as error:  # the model is refused: what served before keeps serving
                self.champion, self._refused = current, (key, str(error))
                return self._failed(str(error))
            except DpeError as error:
                return self._failed(str(error))
            except Exception as error:  # a bug must not stop the watcher: say it, keep serving
                log.exception("loading the champion failed")
                return self._failed(f"could not load the champion: {error}")
            return True

    def _verify(self, store: Store, manifest: champion_store.Manifest) -> None:
        """Hash the published files again, at most every `verify_interval_s`: a file changed
        or removed in the store under a served champion raises DpeError (degraded)."""
        if time.monotonic() - self._verified_at < self.settings.verify_interval_s:
            return
        champion_store.verify(store, manifest)
        self._verified_at = time.monotonic()

    def _failed(self, problem: str) -> bool:
        if problem != self.problem:  # logged once per problem, not every interval
            log.warning("champion not refreshed: %s", problem)
        self.problem = problem
        return False

    async def watch(self) -> None:
        """Refresh now, then every `reload_interval_s`, until cancelled."""
        while True:
            await asyncio.to_thread(self.refresh)
            await asyncio.sleep(self.settings.reload_interval_s)
