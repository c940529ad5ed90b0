"""The beat schedule, built from the policy (pure function) and kept in sync with it.

`build_beat_schedule(policy)` is plain data and unit-tested. `PolicyScheduler` is the
beat scheduler: it loads the policy after start-up (never at import) and rebuilds the
schedule whenever a new policy version is stored, so `stop_scheduler` (which disables
`clm_config.enabled`) really stops the CLM's periodic work.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from celery.beat import PersistentScheduler

from app.bootstrap import get_container
from app.core.clock import utcnow
from app.core.policy import Policy
from app.core.system import set_flag
from app.operations.schedule import BEAT_FLAG, periodic_jobs
from workers.routing import TASK_ROUTES

log = logging.getLogger(__name__)

EVENT_SWEEP_SECONDS = 30.0
POLICY_RESYNC_SECONDS = 30.0
REPORT_SECONDS = 30.0  # how often beat writes its entries' last and next runs for the API, CLI and dashboard


def build_beat_schedule(policy: Policy) -> dict[str, dict[str, Any]]:
    """Beat entries for `policy`: name -> {task, schedule (timedelta), options}."""
    schedule: dict[str, dict[str, Any]] = {
        # Always on: retries events whose handlers failed or whose worker died.
        "event-delivery-sweep": {
            "task": "tasks.events.deliver_events",
            "schedule": timedelta(seconds=EVENT_SWEEP_SECONDS),
        },
    }
    for name, (task, interval) in clm_entries(policy).items():
        schedule[name] = {"task": task, "schedule": interval}
    return schedule


def clm_entries(policy: Policy) -> dict[str, tuple[str, timedelta]]:
    """The CLM's periodic work (app.operations.schedule), limited to tasks that exist (have a route)."""

    return {job.name: (job.task, job.interval) for job in periodic_jobs(policy) if job.task in TASK_ROUTES}


class PolicyScheduler(PersistentScheduler):
    """A persistent beat scheduler whose entries follow the stored policy."""

    _policy_version: int = -1
    _last_sync: float = 0.0
    _last_report: float = 0.0

    def setup_schedule(self) -> None:
        super().setup_schedule()
        self._sync_with_policy(force=True)

    def tick(self, *args: Any, **kwargs: Any) -> float:
        if time.monotonic() - self._last_sync > POLICY_RESYNC_SECONDS:
            self._sync_with_policy()
        wait = float(super().tick(*args, **kwargs))
        if time.monotonic() - self._last_report > REPORT_SECONDS:
            self._report()
        return wait

    def _report(self) -> None:
        """Each entry's last run (none until it has run) and next run, stored for GET /api/schedule."""
        self._last_report = time.monotonic()
        now = utcnow()
        entries: dict[str, dict[str, Any]] = {}
        for name, entry in self.schedule.items():
            if name.startswith("celery."):
                continue
            every = getattr(entry.schedule, "run_every", None)
            remaining = entry.schedule.remaining_estimate(entry.last_run_at)
            entries[name] = {
                "task": entry.task,
                "interval_seconds": every.total_seconds() if every is not None else None,
                "last_run_at": _naive_utc(entry.last_run_at).isoformat() if entry.total_run_count else None,
                "next_run_at": (now + max(remaining, timedelta(0))).isoformat(),
            }
        try:
            with get_container().session() as session:
                set_flag(session, BEAT_FLAG, True, {"at": now.isoformat(), "entries": entries})
        except Exception:
            log.warning("beat could not record its schedule", exc_info=True)

    def _sync_with_policy(self, force: bool = False) -> None:
        self._last_sync = time.monotonic()
        try:
            store = get_container().policy_store
            version = store.current_version()
            if version == self._policy_version and not force:
                return
            wanted = build_beat_schedule(store.get())
        except Exception:
            log.exception("beat could not read the policy; keeping the current schedule")
            return
        for name in [n for n in self.schedule if n not in wanted and not n.startswith("celery.")]:
            self.schedule.pop(name, None)
        self.merge_inplace(wanted)
        self._policy_version = version
        log.info("beat schedule synced with policy v%s: %s", version, sorted(wanted))


def _naive_utc(moment: datetime) -> datetime:
    """Celery's times are aware; the tables' are naive UTC (app.core.clock)."""
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment
