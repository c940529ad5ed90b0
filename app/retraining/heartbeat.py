"""A background heartbeat while a long step runs: a job whose heartbeat stops has lost its worker."""

from __future__ import annotations

import logging
import threading
from types import TracebackType
from typing import TYPE_CHECKING

from app.retraining import jobs

if TYPE_CHECKING:
    from app.bootstrap import Container

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 30.0


class Heartbeat:
    """`with Heartbeat(container, job_id):` stamps the job's `heartbeat_at` every 30 s."""

    def __init__(self, container: Container, job_id: str, interval: float = HEARTBEAT_SECONDS) -> None:
        self.container, self.job_id, self.interval = container, job_id, interval
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
                jobs.touch(self.container, self.job_id)
            except Exception:  # a missed beat is harmless; the next one retries
                log.warning("heartbeat for %s failed", self.job_id, exc_info=True)
