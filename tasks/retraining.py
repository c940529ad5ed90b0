"""Retraining tasks: thin wrappers around `app.retraining` steps (ids in, small dicts out).

A training that failed is recorded in the job first, then raised, so its task state is
FAILURE (Flower, the result backend) rather than a success carrying an error. A failed
header task makes Celery skip the chord's callback and call its errback instead:
`finalize_after_failure` (linked by workers/canvas.py) closes the job from its records, as
`finalize_job` does. Eager runs (the embedded mode) return the error dict instead: there an
exception would propagate out of the caller.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from app.bootstrap import get_container
from app.clm.guard import request_retraining
from app.retraining import RetrainingOrchestrator, closing, folds, pieces, steps
from app.retraining.jobs import FAILED
from workers.celery_app import celery_app

log = logging.getLogger(__name__)


@celery_app.task(name="tasks.retraining.prepare_dataset")
def prepare_dataset(job_id: str) -> dict[str, Any]:
    try:
        return steps.prepare_dataset(get_container(), job_id)
    except Exception as exc:  # keep the chain going: the training steps then see no dataset
        log.exception("prepare_dataset(%s) failed", job_id)
        return {"job_id": job_id, "error": f"{type(exc).__name__}: {exc}"}


@celery_app.task(name="tasks.retraining.prepare_piece")
def prepare_piece(job_id: str, piece: int) -> dict[str, Any]:
    """One group of symbols of a large job's dataset (joined by `prepare_dataset`)."""
    try:
        return pieces.prepare_piece(get_container(), job_id, piece)
    except Exception as exc:  # never raise in a chord header: the dataset step then builds the piece
        log.exception("prepare_piece(%s, %s) failed", job_id, piece)
        return {"job_id": job_id, "piece": piece, "error": f"{type(exc).__name__}: {exc}"}


@celery_app.task(name="tasks.retraining.train_model", bind=True)
def train_model(self: Any, job_id: str, model_type: str) -> dict[str, Any]:
    queue = (self.request.delivery_info or {}).get("routing_key")
    try:
        summary = steps.train_and_close(
            get_container(),
            job_id,
            model_type,
            queue=queue,
            worker=self.request.hostname,
            on_progress=None if self.request.is_eager else _flower_progress(self),
        )
    except Exception as exc:
        log.exception("train_model(%s, %s) failed", job_id, model_type)
        error = f"{type(exc).__name__}: {exc}"
        summary = {"job_id": job_id, "model_type": model_type, "status": FAILED, "error": error}
    if summary.get("status") == FAILED and not self.request.is_eager:
        raise TrainingFailed(f"{job_id} {model_type}: {summary.get('error')}")
    return summary


def _flower_progress(task: Any) -> Any:
    """Progress for Flower (a `task-progress` event: state PROGRESS, the stage in its `result` field, as
    task-succeeded carries its result) and for the result backend (`AsyncResult.info`)."""

    def report(meta: dict[str, Any]) -> None:
        task.update_state(state="PROGRESS", meta=meta)
        task.send_event("task-progress", result=json.dumps(meta))

    return report


class TrainingFailed(Exception):
    """A training task's failure, already recorded in its job (raised for a true FAILURE task state)."""


@celery_app.task(name="tasks.retraining.finalize_after_failure", autoretry_for=(Exception,), max_retries=5)
def finalize_after_failure(job_id: str) -> dict[str, Any]:
    """The chord's errback (a training task failed): the job's records say what happened to each model."""
    return closing.finalize_job(get_container(), job_id)


@celery_app.task(name="tasks.retraining.train_fold", bind=True)
def train_fold(self: Any, job_id: str, model_type: str, fold: int) -> dict[str, Any]:
    """One walk-forward fold of one model type (a fanned-out job's canvas: workers/canvas.py)."""
    queue = (self.request.delivery_info or {}).get("routing_key")
    try:
        container = get_container()
        summary = folds.train_fold(
            container,
            job_id,
            model_type,
            fold,
            queue=queue,
            worker=self.request.hostname,
            on_progress=None if self.request.is_eager else _flower_progress(self),
        )
        steps.close_if_done(container, job_id)
        return summary
    except Exception as exc:  # never raise in a chord header
        log.exception("train_fold(%s, %s, %s) failed", job_id, model_type, fold)
        error = f"{type(exc).__name__}: {exc}"
        return {"job_id": job_id, "model_type": model_type, "fold": fold, "status": FAILED, "error": error}


# Idempotent, so retried on any error (a database hiccup): a lost callback would leave the
# job running until the stale-job sweep.
@celery_app.task(
    name="tasks.retraining.finalize_job", autoretry_for=(Exception,), max_retries=5, retry_backoff=2, retry_jitter=True
)
def finalize_job(results: list[dict[str, Any]] | None, job_id: str) -> dict[str, Any]:
    """Chord callback: the header's results are only a summary; the job row is the truth. The last
    training task has usually closed the job already (`steps.train_and_close`): then nothing to do."""
    return closing.finalize_job(get_container(), job_id)


@celery_app.task(name="tasks.retraining.scheduled_full_retraining")
def scheduled_full_retraining() -> dict[str, Any]:
    """Beat's weekly full retraining, through the CLM's storm guard (running jobs and cooldown)."""

    return request_retraining(get_container(), None, "scheduled", automatic=True).to_dict()


@celery_app.task(name="tasks.retraining.close_stale_jobs")
def close_stale_jobs() -> dict[str, Any]:
    """Every minute: training tasks lost with their worker (no heartbeat), then whole jobs gone quiet."""
    orchestrator = RetrainingOrchestrator(get_container())
    lost = [f"{t.job_id}:{t.model_type}:{t.action}" for t in orchestrator.sweep_lost_tasks()]
    return {"lost": lost, "closed": orchestrator.close_stale_jobs()}
