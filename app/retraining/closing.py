"""Closing a job: register what was trained, record what was not, publish the outcome.

`finalize_job` is the chord's callback; `close_stale_jobs` closes jobs whose tasks
vanished (no heartbeat for `stale_job_minutes`); `cancel_job` stops one on request.
All three end in the same place and are idempotent: a closed job stays as it was.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from app.core.clock import utcnow
from app.core.db.models import RetrainingJob
from app.core.topics import RetrainingCompleted
from app.model_registry import TRAINING, ModelRegistry
from app.retraining import folds, jobs

if TYPE_CHECKING:
    from app.core.container import Container

log = logging.getLogger(__name__)


def finalize_job(container: Container, job_id: str, missing_reason: str | None = None) -> dict[str, Any]:
    """Register every trained model (SHADOW, or ACTIVE for a first; REJECTED when it failed the
    baseline gate, the figures in the job's entry), then close the job."""

    registry = ModelRegistry(container)
    with container.session() as session:
        row = jobs.lock_job(session, job_id)
        if row.status != jobs.RUNNING:
            return {"job_id": job_id, "status": row.status, "skipped": True}
        row.stage, row.progress_pct = "finalizing", 95.0
        meta = dict(row.metadata_ or {})
        errors: dict[str, str] = {}
        for model_type in row.model_types or []:
            entry = dict((row.models_trained or {}).get(model_type) or {})
            timed: dict[str, float] = {}  # the callback's seconds for this type: pooling its folds, registering it
            if entry.get("status") == jobs.TRAINED and entry.get("model_id") and meta.get("cv_folds"):
                # Fanned out: the folds' figures and the gate join the staged model before it goes live.
                clock = time.perf_counter()
                assembled = folds.assemble(container, row, model_type)
                timed["fold_pooling"] = time.perf_counter() - clock
                if assembled.reason is not None:
                    registry.reject_model(entry["model_id"], assembled.reason)
                    jobs.set_model_result(row, model_type, status=jobs.PARTIAL, error=assembled.reason)
                    errors[model_type] = assembled.reason
                    continue
                registry.add_staged_metrics(entry["model_id"], assembled.checks or {})
            if entry.get("status") == jobs.TRAINED and entry.get("model_id"):
                clock = time.perf_counter()
                record = registry.register_staged(entry["model_id"])
                timed["promotion"] = time.perf_counter() - clock
                gate = (record.metrics or {}).get("gate") or {}
                extra = {"gate": gate.get("reason")} if gate.get("reason") else {}
                stage_seconds = dict(entry.get("stage_seconds") or {})
                extra["stage_seconds"] = stage_seconds | {k: round(v, 3) for k, v in timed.items()}
                jobs.set_model_result(row, model_type, status=jobs.REGISTERED, registry_status=record.status, **extra)
            elif entry.get("status") == jobs.REGISTERED:
                continue
            else:
                reason = entry.get("error") or missing_reason or "no result: the training task never reported"
                if entry.get("status") == jobs.TRAINING and not entry.get("error"):
                    reason = missing_reason or "no result: the worker was lost while training"
                jobs.set_model_result(row, model_type, status=jobs.FAILED, error=reason)
                errors[model_type] = reason
        registered = len(row.model_types or []) - len(errors)
        if meta.get("dataset_error"):
            status = jobs.FAILED
        elif not errors:
            status = jobs.COMPLETED
        else:
            status = jobs.PARTIAL if registered else jobs.FAILED
        message = _error_message(meta.get("dataset_error"), errors)
        close(container, session, row, status, message)
        return {"job_id": job_id, "status": status, "errors": errors}


def cancel_job(
    container: Container, job_id: str, reason: str = "cancelled by operator", status: str = jobs.CANCELLED
) -> jobs.JobRecord:
    """Close a running job as `status` (cancelled) and reject the models it staged; a closed job is left alone."""

    registry = ModelRegistry(container)
    with container.session() as session:
        row = jobs.lock_job(session, job_id)
        if row.status == jobs.RUNNING:
            for model_type, entry in (row.models_trained or {}).items():
                if entry.get("model_id") and registry.get_model(entry["model_id"]).status == TRAINING:
                    registry.reject_model(entry["model_id"], f"job {job_id} cancelled")
                    jobs.set_model_result(row, model_type, status=jobs.CANCELLED)
            close(container, session, row, status, reason)
        return jobs.JobRecord.from_row(row)


def close_stale_jobs(container: Container, stale_after: timedelta | None = None) -> list[str]:
    """Close running jobs whose tasks have not been heard of for `stale_after`; returns their ids."""
    if stale_after is None:
        stale_after = timedelta(minutes=container.policy_store.get().clm_config.stale_job_minutes)
    cutoff = utcnow() - stale_after
    last_sign = func.coalesce(RetrainingJob.heartbeat_at, RetrainingJob.started_at)
    with container.session() as session:
        stale = list(
            session.scalars(
                select(RetrainingJob.job_id).where(RetrainingJob.status == jobs.RUNNING, last_sign < cutoff)
            )
        )
    closed = []
    for job_id in stale:
        reason = f"no result: no heartbeat from its tasks for over {stale_after} (worker lost)"
        outcome = finalize_job(container, job_id, missing_reason=reason)
        if not outcome.get("skipped"):
            log.warning("closed stale retraining job %s as %s", job_id, outcome["status"])
            closed.append(job_id)
    return closed


def _error_message(dataset_error: str | None, errors: dict[str, str]) -> str | None:
    parts = [f"dataset: {dataset_error}"] if dataset_error else []
    parts += [f"{model_type}: {error}" for model_type, error in sorted(errors.items())]
    return "; ".join(parts)[:4000] or None


def close(container: Container, session: Any, row: RetrainingJob, status: str, message: str | None) -> None:
    """End a locked job row as `status` and publish `clm.retraining.completed` in the same transaction."""
    now = utcnow()
    row.status, row.error_message = status, message
    row.completed_at = now
    row.duration_seconds = max(0, round((now - row.started_at).total_seconds()))
    log.info("job %s: %s after %s s%s", row.job_id, status, row.duration_seconds, f" ({message})" if message else "")
    row.stage, row.heartbeat_at = "done", now
    if status != jobs.CANCELLED:
        row.progress_pct = 100.0
    models = {
        m: {k: e.get(k) for k in ("status", "model_id", "registry_status", "error") if e.get(k)}
        for m, e in (row.models_trained or {}).items()
    }
    container.bus.publish(
        session,
        RetrainingCompleted(
            job_id=row.job_id,
            models_trained={m: e["model_id"] for m, e in models.items() if e.get("model_id")},
            duration_sec=(now - row.started_at).total_seconds(),
            job_type=row.job_type,
            status=status,
            duration_seconds=row.duration_seconds,
            models=models,
            error=message,
        ),
    )
