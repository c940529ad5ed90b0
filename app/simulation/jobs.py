"""The simulated beat's runner: periodic tasks through the container's dispatcher, timed.

Embedded, a task runs eagerly in this process. Distributed, it goes through the broker to
a worker, and the driver waits until it, the events it caused and any retraining job it
started have finished, so that the simulated clock only moves on when the system is idle.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from app.core.clock import utcnow
from app.core.db.models import Event, RetrainingJob
from app.operations.schedule import PeriodicJob, SimulatedBeat
from app.retraining.jobs import RUNNING

if TYPE_CHECKING:
    from app.core.container import Container

# The replay feeds the candle store itself, so the exchange refresh is not part of the run; and
# no job can go stale while the driver waits for it, so the 5-minute stale-job sweep is left out.
RUN_JOBS = {"full-retraining", "health-check", "shadow-evaluation", "rl-maintenance", "regime-detection"}
DRIFT_JOB = "drift-check"


class JobRunner:
    def __init__(self, container: Container, wait_timeout_s: float = 900.0, only: set[str] | None = None) -> None:
        self.container = container
        self.wait_timeout_s = wait_timeout_s
        self.seconds: dict[str, float] = defaultdict(float)
        self.runs: Counter[str] = Counter()
        self.calls: list[tuple[str, float, datetime]] = []  # (job, wall seconds, simulated time)
        self.beat = SimulatedBeat(run=self.run_job, only=set(RUN_JOBS if only is None else only))

    @property
    def distributed(self) -> bool:
        return not self.container.settings.embedded

    def enable_drift_checks(self) -> None:
        self.beat.only = (self.beat.only or set()) | {DRIFT_JOB}

    def tick(self, now: datetime) -> list[str]:
        return self.beat.tick(self.container.policy_store.get(), now)

    def run_job(self, job: PeriodicJob, now: datetime) -> None:
        self.run_task(job.name, job.task)

    def run_task(self, label: str, task: str, **kwargs: Any) -> None:
        started = time.perf_counter()
        result = self.container.dispatcher.run_task(task, **kwargs)  # type: ignore[func-returns-value]
        if self.distributed:
            if result is not None and hasattr(result, "get"):
                result.get(timeout=self.wait_timeout_s, propagate=False)
            self.wait_idle()
        seconds = time.perf_counter() - started
        self.seconds[label] += seconds
        self.runs[label] += 1
        self.calls.append((label, seconds, utcnow()))

    def wait_idle(self) -> None:
        """Distributed: until no event is pending and no retraining job is running (no-op embedded)."""
        if not self.distributed:
            return
        deadline = time.monotonic() + self.wait_timeout_s
        while time.monotonic() < deadline:
            with self.container.session_factory() as session:
                pending = session.scalar(select(func.count()).select_from(Event).where(Event.status == "pending"))
                running = session.scalar(
                    select(func.count()).select_from(RetrainingJob).where(RetrainingJob.status == RUNNING)
                )
            if not pending and not running:
                return
            if pending:
                self.container.dispatcher.deliver_events()
            time.sleep(0.05)
        raise TimeoutError(f"the workers did not become idle within {self.wait_timeout_s:.0f} s")
