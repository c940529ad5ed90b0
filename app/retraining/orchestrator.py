"""RetrainingOrchestrator (specification `retraining.py`): start, watch and cancel retraining jobs.

A job is a `retraining_jobs` row first (with its `clm.retraining.started` event, in one
transaction); the canvas is started after the commit through `container.dispatcher`, so
a worker never sees a job id that is not yet stored.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from app.core.db.models import RetrainingJob
from app.core.topics import RetrainingStarted
from app.retraining import closing, folds, jobs, pieces
from app.retraining.lost_tasks import LostTask, sweep_lost_tasks
from app.retraining.spec import DataSelection, RetrainingSpec
from app.rl.maintenance import run_rl_maintenance

if TYPE_CHECKING:
    from app.core.container import Container

log = logging.getLogger(__name__)

# The RL agents' maintenance (issue 8) is looked up by name: app/ stays importable without it.


class RetrainingOrchestrator:
    def __init__(self, container: Container) -> None:
        self.container = container

    # ----------------------------------------------------------------- start

    def start_full(self, reason: str = "manual", spec: DataSelection | Mapping[str, Any] | None = None) -> str:
        """Retrain every model type of the policy on `spec`'s data; returns the job id."""
        return self.start(RetrainingSpec.create(self.container.policy_store.get(), None, reason, spec))

    def start_partial(
        self, model_types: list[str], reason: str = "manual", spec: DataSelection | Mapping[str, Any] | None = None
    ) -> str:
        """Retrain only `model_types` (e.g. after MEDIUM drift of one model)."""
        return self.start(RetrainingSpec.create(self.container.policy_store.get(), model_types, reason, spec))

    def start(self, spec: RetrainingSpec, forced_over: Mapping[str, str] | None = None) -> str:
        """Store the job of a validated spec, then start its canvas; returns the job id.

        `forced_over`: the jobs (model type -> job id) an operator's `force: true` overrode in
        the storm guard (`app.clm.guard`), recorded on the job."""
        model_types = list(spec.model_types)
        stored = spec.data.stored()
        # Fixed with the job: its canvas has one task per (model type, walk-forward fold) besides the final fits.
        training = self.container.policy_store.get().training
        cv_folds = training.cv_folds if training.fold_tasks else 0  # 0: the folds run inside the training task
        # A large dataset is prepared in pieces, one task per group of symbols.
        dataset_pieces = pieces.piece_count(self.container, spec.data)
        metadata = {
            "spec": stored,
            "deliveries": {},
            "cv_folds": cv_folds,
            "dataset_pieces": dataset_pieces,
            "canvas_tasks": folds.canvas_task_count(model_types, cv_folds, dataset_pieces),
        }
        if spec.window is not None:
            metadata["training_window"] = spec.window.stored()
        if forced_over is not None:
            metadata["forced_over"] = dict(forced_over)
        with self.container.session() as session:
            row = jobs.insert_job(session, spec.job_type, spec.reason, model_types, metadata)
            job_id = row.job_id
            self.container.bus.publish(
                session,
                RetrainingStarted(
                    job_id=job_id,
                    trigger_reason=spec.reason,
                    job_type=spec.job_type,
                    reason=spec.reason,
                    model_types=model_types,
                ),
            )
        try:
            self.container.dispatcher.start_retraining(
                job_id, model_types, stored, folds=cv_folds, pieces=dataset_pieces
            )
        except Exception as exc:  # the broker is down: the job must not stay "running"
            log.exception("could not start the canvas of %s", job_id)
            closing.cancel_job(self.container, job_id, f"could not start: {type(exc).__name__}: {exc}", jobs.FAILED)
            raise
        return job_id

    def run_rl_maintenance(self) -> str:
        """Snapshot and prune the RL agents, recorded as an `rl_maintenance` job."""
        with self.container.session() as session:
            job_id = jobs.insert_job(session, "rl_maintenance", "scheduled", [], {}).job_id
            self.container.bus.publish(
                session, RetrainingStarted(job_id=job_id, trigger_reason="scheduled", job_type="rl_maintenance")
            )
        try:
            report = run_rl_maintenance(self.container)
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
                revoke(
                    job_id,
                    record.model_types,
                    folds=int(record.metadata.get("cv_folds") or 0),
                    pieces=int(record.metadata.get("dataset_pieces") or 0),
                )
            except Exception:  # the tasks still see the cancelled job and do nothing
                log.warning("could not revoke the tasks of %s", job_id, exc_info=True)
        return record

    def close_stale_jobs(self, stale_after: timedelta | None = None) -> list[str]:
        return closing.close_stale_jobs(self.container, stale_after)

    def sweep_lost_tasks(self) -> list[LostTask]:
        return sweep_lost_tasks(self.container)
