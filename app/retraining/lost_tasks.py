"""Training tasks lost with their worker: found by their missing heartbeat, in minutes.

A training task beats (the model's entry in the job, `heartbeat_at`) while it trains. When a
worker dies (SIGKILL, OOM, the machine), its message waits in the broker's unacked set until
the visibility timeout, hours later, so the sweep cannot count on it. Instead, an entry still
`training` without a beat for `task_heartbeat_minutes` is declared lost: sent again while the
delivery cap allows, else closed as failed with the reason. Models that trained are kept; once
every model of the job has an outcome, the job is finalized (the chord's callback will not
come: the lost task never completes).

Tasks that never started are lost another way: a broker that restarts without its data forgets
every queued message. Such a task has no entry (or one still `redelivered`) and never beats.
When no running job has beaten for `task_heartbeat_minutes` (no worker is busy on any job's
task, so nothing is merely queued behind another) and a job whose dataset step has run still
has final fits or folds that never started, each is sent again (`resent`, `resent_at` in its
entry), at most once per limit and within `max_task_deliveries` sends in all; then it is failed
with the reason, so its model is partial and the job closes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from app.core.clock import utcnow
from app.core.db.models import RetrainingJob
from app.retraining import closing, folds, jobs

if TYPE_CHECKING:
    from app.core.container import Container

log = logging.getLogger(__name__)

SETTLED = (jobs.TRAINED, jobs.FAILED)
REDELIVERED = "redelivered"  # a model's entry between a lost delivery and the next one starting


NEVER_STARTED = (None, REDELIVERED)


@dataclass(frozen=True)
class LostTask:
    job_id: str
    model_type: str
    action: str  # "redelivered" or "failed"
    reason: str
    fold: int = 0  # a walk-forward fold task; 0: the model's final fit


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
    found += _resend_unstarted(container, cutoff, limit, clm.max_task_deliveries)
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
    """Running jobs the sweep touched (a lost training, a task sent again) whose every task now has
    an outcome: no chord callback will close them (the rule of `steps.all_trainings_done`)."""
    with container.session() as session:
        rows = session.scalars(select(RetrainingJob).where(RetrainingJob.status == jobs.RUNNING))
        return {row.job_id for row in rows if row.model_types and _touched(row) and _all_done(row)}


def _touched(row: RetrainingJob) -> bool:
    entries = [(row.models_trained or {}).get(m) or {} for m in row.model_types or []]
    fold_entries = [f for e in entries for f in (e.get("folds") or {}).values()]
    return any(e.get("lost") or e.get("resent") for e in entries) or any(f.get("resent") for f in fold_entries)


def _all_done(row: RetrainingJob) -> bool:
    count = int((row.metadata_ or {}).get("cv_folds") or 0)
    for model_type in row.model_types or []:
        entry = (row.models_trained or {}).get(model_type) or {}
        if entry.get("status") not in SETTLED:
            return False
        fold_entries = entry.get("folds") or {}
        states = [(fold_entries.get(str(k)) or {}).get("status") for k in range(1, count + 1)]
        if entry.get("status") != jobs.FAILED and any(state not in folds.FINAL_FOLD_STATES for state in states):
            return False
    return True


def _unstarted(row: RetrainingJob) -> list[tuple[str, int]]:
    """The job's tasks that never started, as (model type, fold; 0 for the final fit), once the
    dataset step has sent them (its id or error is recorded)."""
    meta = row.metadata_ or {}
    if not (meta.get("dataset_id") or meta.get("dataset_error")):
        return []
    count = int(meta.get("cv_folds") or 0)
    out = []
    for model_type in row.model_types or []:
        entry = (row.models_trained or {}).get(model_type) or {}
        if entry.get("status") in NEVER_STARTED:
            out.append((model_type, 0))
        if entry.get("status") == jobs.FAILED:
            continue  # its folds no longer matter
        fold_entries = entry.get("folds") or {}
        out += [
            (model_type, k)
            for k in range(1, count + 1)
            if (fold_entries.get(str(k)) or {}).get("status") in NEVER_STARTED
        ]
    return out


def _last_send(entry: dict[str, Any]) -> datetime | None:
    """When the sweep last sent this task again (a resend, or a lost training's redelivery)."""
    stamps = [entry.get("resent_at"), *[lost.get("at") for lost in entry.get("lost", [])]]
    known = [datetime.fromisoformat(str(s)) for s in stamps if s]
    return max(known) if known else None


def _resend_unstarted(container: Container, cutoff: datetime, limit: timedelta, cap: int) -> list[LostTask]:
    """Send again (or, past the cap, fail) the never-started tasks of running jobs, when no job beats."""
    with container.session() as session:
        running = list(session.scalars(select(RetrainingJob).where(RetrainingJob.status == jobs.RUNNING)))
        if any(_as_naive(row.heartbeat_at or row.started_at) >= cutoff for row in running):
            return []  # a worker is busy on some job's task: what has not started may only be queued
        candidates = [(row.job_id, task) for row in running for task in _unstarted(row)]
    found = []
    for job_id, (model_type, fold) in candidates:
        lost = _resend_one(container, job_id, model_type, fold, cutoff, limit, cap)
        if lost is None:
            continue
        found.append(lost)
        name = f"fold {fold}" if fold else "final fit"
        log.warning("job %s: %s %s never started: %s (%s)", job_id, model_type, name, lost.action, lost.reason)
        if lost.action == REDELIVERED:
            if fold:
                container.dispatcher.retry_fold(job_id, model_type, fold)
            else:
                container.dispatcher.retry_training(job_id, model_type)
    return found


def _resend_one(
    container: Container, job_id: str, model_type: str, fold: int, cutoff: datetime, limit: timedelta, cap: int
) -> LostTask | None:
    with container.session() as session:
        row = jobs.lock_job(session, job_id)
        if row.status != jobs.RUNNING or (model_type, fold) not in _unstarted(row):
            return None  # it started, finished or was closed meanwhile
        model_entry = (row.models_trained or {}).get(model_type) or {}
        entry = dict((model_entry.get("folds") or {}).get(str(fold)) or {}) if fold else dict(model_entry)
        last = _last_send(entry)
        if last is not None and last >= cutoff:
            return None  # sent again less than a limit ago
        if fold:
            started = int(entry.get("deliveries") or 0)
        else:
            started = int((row.metadata_ or {}).get("deliveries", {}).get(model_type, 0))
        resent = int(entry.get("resent") or 0)
        sends = max(1, started) + resent
        quiet = f"no task of any running job has beaten for over {limit.total_seconds() / 60:g} min"
        now = utcnow().isoformat()
        if sends < cap:
            action, reason = REDELIVERED, f"its message was lost ({quiet}); sent again ({sends + 1} of {cap} sends)"
            values: dict[str, Any] = {"status": REDELIVERED, "resent": resent + 1, "resent_at": now}
        else:
            action = jobs.FAILED
            reason = f"never started: its message was lost ({quiet}); given up after {sends} of {cap} sends"
            values = {"status": jobs.FAILED, "error": reason, "finished_at": now}
        if fold:
            folds.set_fold_result(row, model_type, fold, **values)
        else:
            jobs.set_model_result(row, model_type, **values)
        row.progress_pct = jobs.training_progress(row)
        return LostTask(job_id, model_type, action, reason, fold)


def _as_naive(stamp: datetime) -> datetime:
    return stamp.replace(tzinfo=None) if stamp.tzinfo is not None else stamp
