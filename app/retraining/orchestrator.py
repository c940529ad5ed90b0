"""RetrainingOrchestrator (specification `retraining.py`): start, watch and cancel retraining jobs.

A job is a `retraining_jobs` row first (with its `clm.retraining.started` event, in one
transaction); the canvas is started after the commit through `container.dispatcher`, so
a worker never sees a job id that is not yet stored.
"""

from __future__ import annotations

import importlib
import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from app.core.clock import utcnow
from app.core.db.models import RetrainingJob
from app.model_training import MODEL_TYPES
from app.retraining import closing, jobs

if TYPE_CHECKING:
    from app.core.container import Container

log = logging.getLogger(__name__)

# The RL agents' maintenance (issue 8) is looked up by name: app/ stays importable without it.
RL_MAINTENANCE_HOOK = "app.rl.maintenance:run_rl_maintenance"


class RetrainingOrchestrator:
    def __init__(self, container: Container) -> None:
        self.container = container

    # ----------------------------------------------------------------- start

    def start_full(
        self, reason: str = "manual", spec: dict[str, Any] | None = None, forced_over: dict[str, str] | None = None
    ) -> str:
        """Retrain every model type of the policy; returns the job id.

        `forced_over`: the jobs (model type -> job id) an operator's `force: true` overrode
        in the storm guard (`app.clm.guard`), recorded on the job."""
        model_types = list(self.container.policy_store.get().training.model_types)
        return self._start("full", model_types, reason, spec, forced_over)

    def start_partial(
        self,
        model_types: list[str],
        reason: str = "manual",
        spec: dict[str, Any] | None = None,
        forced_over: dict[str, str] | None = None,
    ) -> str:
        """Retrain only `model_types` (e.g. after MEDIUM drift of one model)."""
        return self._start("partial", model_types, reason, spec, forced_over)

    def _start(
        self,
        job_type: str,
        model_types: list[str],
        reason: str,
        spec: dict[str, Any] | None,
        forced_over: dict[str, str] | None = None,
    ) -> str:
        model_types = _checked_model_types(model_types)
        spec = self.default_spec() | (spec or {})
        # Fixed now, so a redelivered dataset step builds the same dataset (its id hashes the spec).
        spec.setdefault("end", utcnow().replace(second=0, microsecond=0).isoformat())
        metadata: dict[str, Any] = {"spec": spec, "deliveries": {}}
        if forced_over is not None:
            metadata["forced_over"] = dict(forced_over)
        with self.container.session() as session:
            row = jobs.insert_job(session, job_type, reason, model_types, metadata)
            job_id = row.job_id
            self.container.bus.publish(
                session,
                "clm.retraining.started",
                {"job_id": job_id, "job_type": job_type, "reason": reason, "model_types": model_types},
            )
        try:
            self.container.dispatcher.start_retraining(job_id, model_types, spec)
        except Exception as exc:  # the broker is down: the job must not stay "running"
            log.exception("could not start the canvas of %s", job_id)
            closing.cancel_job(self.container, job_id, f"could not start: {type(exc).__name__}: {exc}", jobs.FAILED)
            raise
        return job_id

    def default_spec(self) -> dict[str, Any]:
        """The dataset a job trains on, from the policy (small: it is stored in the job row).

        Any `DatasetSpec` field may be overridden (`source`, `files`, `start`, `end`, ...);
        `dataset_id` reuses a dataset already built.
        """
        data = self.container.policy_store.get().data
        return {
            "exchange": data.exchange,
            "symbols": list(data.symbols),
            "timeframe": data.timeframe,
            "lookback_days": data.lookback_days,
        }

    def run_rl_maintenance(self) -> str:
        """Snapshot and prune the RL agents, recorded as an `rl_maintenance` job."""
        with self.container.session() as session:
            job_id = jobs.insert_job(session, "rl_maintenance", "scheduled", [], {}).job_id
            self.container.bus.publish(
                session, "clm.retraining.started", {"job_id": job_id, "job_type": "rl_maintenance"}
            )
        module_name, func_name = RL_MAINTENANCE_HOOK.split(":")
        try:
            report = getattr(importlib.import_module(module_name), func_name)(self.container)
            error = None
        except Exception as exc:
            log.exception("RL maintenance failed")
            report, error = None, f"{type(exc).__name__}: {exc}"
        with self.container.session() as session:
            row = jobs.lock_job(session, job_id)
            jobs.set_metadata(row, report=report if isinstance(report, dict) else None)
            closing.close(self.container, session, row, jobs.FAILED if error else jobs.COMPLETED, error)
        return job_id

    # ----------------------------------------------------------------- watch, cancel

    def get_job(self, job_id: str) -> jobs.JobRecord:
        with self.container.session() as session:
            row = session.get(RetrainingJob, job_id)
            if row is None:
                raise jobs.JobNotFoundError(f"no retraining job {job_id!r}")
            return jobs.JobRecord.from_row(row)

    def list_jobs(
        self, limit: int = 20, status: str | None = None, job_type: str | None = None
    ) -> list[jobs.JobRecord]:
        """Retraining history, newest first (specification `get_retraining_history`)."""
        query = select(RetrainingJob).order_by(RetrainingJob.started_at.desc(), RetrainingJob.job_id.desc())
        if status:
            query = query.where(RetrainingJob.status == status)
        if job_type:
            query = query.where(RetrainingJob.job_type == job_type)
        with self.container.session() as session:
            return [jobs.JobRecord.from_row(r) for r in session.scalars(query.limit(limit))]

    def cancel(self, job_id: str, reason: str = "cancelled by operator") -> jobs.JobRecord:
        """Mark the job cancelled, then revoke its queued tasks; running ones notice and stop."""
        record = closing.cancel_job(self.container, job_id, reason)
        revoke = getattr(self.container.dispatcher, "cancel_retraining", None)
        if revoke is not None and record.status == jobs.CANCELLED:
            try:
                revoke(job_id, record.model_types)
            except Exception:  # the tasks still see the cancelled job and do nothing
                log.warning("could not revoke the tasks of %s", job_id, exc_info=True)
        return record

    def close_stale_jobs(self, stale_after: timedelta | None = None) -> list[str]:
        return closing.close_stale_jobs(self.container, stale_after)


def _checked_model_types(model_types: list[str]) -> list[str]:
    if isinstance(model_types, str) or not model_types:
        raise ValueError(f"model_types must be a non-empty list of model types, got {model_types!r}")
    unknown = [m for m in model_types if m not in MODEL_TYPES]
    if unknown:
        raise ValueError(f"unknown model types {unknown}; known: {sorted(MODEL_TYPES)}")
    return list(dict.fromkeys(model_types))
