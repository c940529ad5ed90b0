"""Retraining tasks: thin wrappers around `app.retraining` steps (ids in, small dicts out).

Header tasks of the chord never raise: an exception there would skip the callback and
leave the job running, so anything unexpected comes back as an error dict instead.
"""

from __future__ import annotations

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
        return steps.train_one_model(get_container(), job_id, model_type, queue=queue, worker=self.request.hostname)
    except Exception as exc:  # never raise in a chord header
        log.exception("train_model(%s, %s) failed", job_id, model_type)
        return {"job_id": job_id, "model_type": model_type, "status": FAILED, "error": f"{type(exc).__name__}: {exc}"}


@celery_app.task(name="tasks.retraining.train_fold", bind=True)
def train_fold(self: Any, job_id: str, model_type: str, fold: int) -> dict[str, Any]:
    """One walk-forward fold of one model type (a fanned-out job's canvas: workers/canvas.py)."""
    queue = (self.request.delivery_info or {}).get("routing_key")
    try:
        return folds.train_fold(get_container(), job_id, model_type, fold, queue=queue, worker=self.request.hostname)
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
    """Chord callback: the header's results are only a summary; the job row is the truth."""
    return closing.finalize_job(get_container(), job_id)


@celery_app.task(name="tasks.retraining.scheduled_full_retraining")
def scheduled_full_retraining() -> dict[str, Any]:
    """Beat's weekly full retraining, through the CLM's storm guard (running jobs and cooldown)."""

    return request_retraining(get_container(), None, "scheduled").to_dict()


@celery_app.task(name="tasks.retraining.close_stale_jobs")
def close_stale_jobs() -> dict[str, Any]:
    return {"closed": RetrainingOrchestrator(get_container()).close_stale_jobs()}
