"""A background heartbeat while a long step runs: a job whose heartbeat stops has lost its worker."""

from __future__ import annotations

import logging
import threading
from types import TracebackType
from typing import TYPE_CHECKING

from app.retraining import jobs

if TYPE_CHECKING:
    from app.core.container import Container

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 30.0


class Heartbeat:
    """`with Heartbeat(container, job_id[, model_type]):` stamps the job's `heartbeat_at` (and the
    model's entry's, for a training task) every 30 s.

    Beats come at least four times per `stale_job_minutes` and six times per `task_heartbeat_minutes`,
    so a live job or task is never taken for a lost one.
    """

    def __init__(
        self, container: Container, job_id: str, model_type: str | None = None, interval: float | None = None
    ) -> None:
        if interval is None:
            clm = container.policy_store.get().clm_config
            interval = min(HEARTBEAT_SECONDS, clm.stale_job_minutes * 60 / 4, clm.task_heartbeat_minutes * 60 / 6)
        self.container, self.job_id, self.model_type, self.interval = container, job_id, model_type, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{job_id}", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                jobs.touch(self.container, self.job_id, self.model_type)
            except Exception:  # a missed beat is harmless; the next one retries
                log.warning("heartbeat for %s failed", self.job_id, exc_info=True)
