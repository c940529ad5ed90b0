"""Load the live models before a request needs them: at process start, and when they change.

The first prediction of a model used to load it inside the request (14.5 s for a neural model
in the API), and that latency went into the served latency and the models' health figures.
`start_preload` runs `preload_live_models` on a daemon thread when the API process starts
(`workers.wsgi`), so the process starts at once and a request served meanwhile waits only for
the model it needs. The thread then looks again every `model_watch_seconds`: in the
distributed mode `model.promoted` is delivered on a Celery worker, not in the API processes,
so a promotion or a new SHADOW model is noticed here (one indexed read of the registry) and
loaded ahead of the next request. Where the event is delivered in-process (embedded mode),
`service.on_model_promoted` loads at once.

Only the models that are ACTIVE or SHADOW are loaded, through each type's own class, so
neuralforecast is imported only when a neural model is live. A model that fails to load
(artifact check, library error) is logged once and skipped; the others load, and the process
goes on.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

from sqlalchemy import select

from app.core.db.models import ModelRegistry as ModelRow
from app.model_registry.records import ACTIVE, SHADOW
from app.prediction.cache import model_cache

if TYPE_CHECKING:
    from app.core.container import Container

log = logging.getLogger(__name__)

LOADED = "loaded"


def live_pairs(container: Container) -> dict[str, tuple[str | None, str | None]]:
    """Model type -> (ACTIVE id, SHADOW id) of every type with a live model."""
    with container.session() as session:
        rows = session.execute(
            select(ModelRow.model_type, ModelRow.model_id, ModelRow.status).where(ModelRow.status.in_((ACTIVE, SHADOW)))
        ).all()
    pairs: dict[str, tuple[str | None, str | None]] = {}
    for model_type, model_id, status in rows:
        active, shadow = pairs.get(model_type, (None, None))
        pairs[model_type] = (model_id, shadow) if status == ACTIVE else (active, model_id)
    return pairs


Failed = dict[str, tuple[tuple[str | None, str | None], str]]  # model type -> (the ids that failed, why)


def preload_live_models(container: Container, failed: Failed | None = None) -> dict[str, str]:
    """Load every type's ACTIVE and SHADOW model into the process's cache; per type "loaded" or
    why not. Never raises for one model: the others still load.

    `failed` (kept by the caller between looks) remembers the ids that failed: they are not
    tried again until the type's live ids change (a broken neural model is not re-read every look);
    a request still tries them, as before."""
    cache = model_cache(container)
    failed = {} if failed is None else failed
    outcome: dict[str, str] = {}
    for model_type, (active_id, shadow_id) in sorted(live_pairs(container).items()):
        if active_id is None:
            outcome[model_type] = f"no ACTIVE model (SHADOW {shadow_id} serves nothing alone)"
            continue
        earlier = failed.get(model_type)
        if earlier is not None and earlier[0] == (active_id, shadow_id):
            outcome[model_type] = earlier[1]
            continue
        started = time.perf_counter()
        try:
            pair = cache.pair(model_type, active_id, shadow_id)
        except Exception as exc:  # one broken model must not stop the others, nor the process
            outcome[model_type] = f"failed: {type(exc).__name__}: {exc}"
            failed[model_type] = ((active_id, shadow_id), outcome[model_type])
            continue
        failed.pop(model_type, None)
        missing = f" (SHADOW {shadow_id} left out)" if shadow_id and pair.shadow is None else ""
        outcome[model_type] = LOADED + missing
        seconds = time.perf_counter() - started
        if seconds > 0.01:  # it loaded something (a hit of the cache takes microseconds)
            log.info("preloaded %s: %s%s in %.1f s", model_type, " + ".join(filter(None, pair.ids)), missing, seconds)
    return outcome


class Preloader:
    """The daemon thread of `start_preload`; `stop()` ends it (tests, shutdown)."""

    def __init__(self, container: Container, watch_seconds: float) -> None:
        self.container = container
        self.watch_seconds = watch_seconds
        self.first_done = threading.Event()  # the start's preload has finished (whatever its outcome)
        self.outcome: dict[str, str] = {}
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="clm-model-preload", daemon=True)

    def _run(self) -> None:
        reported: dict[str, str] = {}
        failed: Failed = {}
        while not self._stop.is_set():
            try:
                self.outcome = preload_live_models(self.container, failed)
            except Exception as exc:  # the database is down, say: try again at the next look
                self.outcome = {"*": f"failed: {type(exc).__name__}: {exc}"}
            for model_type, result in self.outcome.items():
                if result != LOADED and reported.get(model_type) != result:
                    log.error("model preload of %s: %s", model_type, result)  # once per distinct failure
            reported = dict(self.outcome)
            self.first_done.set()
            if not self.watch_seconds or self._stop.wait(self.watch_seconds):
                return

    def stop(self) -> None:
        self._stop.set()


def start_preload(container: Container) -> Preloader | None:
    """Start the preload thread (None when `CLM_MODEL_PRELOAD` is off); returns at once."""
    settings = container.settings
    if not settings.model_preload:
        return None
    preloader = Preloader(container, settings.model_watch_seconds)
    preloader.thread.start()
    return preloader
