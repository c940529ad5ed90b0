"""Training tasks lost with their worker: found by their missing heartbeat, in minutes.

A training task beats (the model's entry in the job, `heartbeat_at`) while it trains. When a
worker dies (SIGKILL, OOM, the machine), its message waits in the broker's unacked set until
the visibility timeout, hours later, so the sweep cannot count on it. Instead, an entry still
`training` without a beat for `task_heartbeat_minutes` is declared lost: sent again while the
delivery cap allows, else closed as failed with the reason. Models that trained are kept; once
every model of the job has an outcome, the job is finalized (the chord's callback will not
come: the lost task never completes).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select

from app.core.clock import utcnow
from app.core.db.models import RetrainingJob
from app.retraining import closing, jobs

if TYPE_CHECKING:
    from app.core.container import Container

log = logging.getLogger(__name__)

SETTLED = (jobs.TRAINED, jobs.FAILED)
REDELIVERED = "redelivered"  # a model's entry between a lost delivery and the next one starting


@dataclass(frozen=True)
class LostTask:
    job_id: str
    model_type: str
    action: str  # "redelivered" or "failed"
    reason: str


def _last_beat(entry: dict[str, object]) -> datetime | None:
    stamp = entry.get("heartbeat_at") or entry.get("started_at")
    return datetime.fromisoformat(str(stamp)) if stamp else None


def _is_lost(entry: dict[str, object], cutoff: datetime) -> bool:
    last = _last_beat(entry)
    return entry.get("status") == jobs.TRAINING and last is not None and last < cutoff


def sweep_lost_tasks(container: Container) -> list[LostTask]:
    """Declare lost every training task silent for `task_heartbeat_minutes`; redeliver or close it."""
    clm = container.policy_store.get().clm_config
    limit = timedelta(minutes=clm.task_heartbeat_minutes)
    cutoff = utcnow() - limit
    with container.session() as session:
        running = list(session.scalars(select(RetrainingJob).where(RetrainingJob.status == jobs.RUNNING)))
        candidates = [
            (row.job_id, model_type)
            for row in running
            for model_type, entry in (row.models_trained or {}).items()
            if _is_lost(entry, cutoff)
        ]
    found: list[LostTask] = []
    for job_id, model_type in candidates:
        lost = _declare_lost(container, job_id, model_type, cutoff, limit, clm.max_task_deliveries)
        if lost is None:
            continue
        found.append(lost)
        log.warning("job %s: %s training %s (%s)", job_id, model_type, lost.action, lost.reason)
        if lost.action == REDELIVERED:
            container.dispatcher.retry_training(job_id, model_type)
    for job_id in sorted(_settled_jobs(container)):
        closing.finalize_job(container, job_id)
    return found


def _declare_lost(
    container: Container, job_id: str, model_type: str, cutoff: datetime, limit: timedelta, cap: int
) -> LostTask | None:
    with container.session() as session:
        row = jobs.lock_job(session, job_id)
        entry = dict((row.models_trained or {}).get(model_type) or {})
        if row.status != jobs.RUNNING or not _is_lost(entry, cutoff):
            return None  # it beat, finished or was closed meanwhile
        deliveries = int((row.metadata_ or {}).get("deliveries", {}).get(model_type, 1))
        reason = (
            f"lost: no heartbeat for over {limit.total_seconds() / 60:g} min from worker {entry.get('worker')} "
            f"(pid {entry.get('pid')}, delivery {deliveries})"
        )
        lost_at = utcnow().isoformat()
        history = [*entry.get("lost", []), {"at": lost_at, "worker": entry.get("worker"), "pid": entry.get("pid")}]
        if deliveries < cap:
            jobs.set_model_result(row, model_type, status=REDELIVERED, lost=history, lost_reason=reason)
            return LostTask(job_id, model_type, REDELIVERED, reason)
        error = f"{reason}; given up after {deliveries} of {cap} deliveries"
        jobs.set_model_result(row, model_type, status=jobs.FAILED, error=error, lost=history, finished_at=lost_at)
        row.progress_pct = jobs.training_progress(row)
        return LostTask(job_id, model_type, jobs.FAILED, error)


def _settled_jobs(container: Container) -> set[str]:
    """Running jobs whose every model has an outcome (after a redelivered training finished)."""
    with container.session() as session:
        rows = session.scalars(select(RetrainingJob).where(RetrainingJob.status == jobs.RUNNING))
        return {
            row.job_id
            for row in rows
            if row.model_types
            and any((row.models_trained or {}).get(m, {}).get("lost") for m in row.model_types)
            and all((row.models_trained or {}).get(m, {}).get("status") in SETTLED for m in row.model_types)
        }
