"""The retraining canvas's steps as services: each re-reads the job by id and is idempotent.

`prepare_dataset` -> `train_one_model` (one per model type, in parallel) -> `finalize_job`.
A step never raises for a domain failure: it records the error in the job and returns a
small dict, so the chord's callback always runs (an exception in a chord header would
skip it). A redelivered step finds its work done, or the job closed, and does nothing.
"""

from __future__ import annotations

import logging
import os
import time
from typing import TYPE_CHECKING, Any

from app.core.clock import utcnow
from app.model_registry import ModelCandidate, ModelRegistry, artifact_dir
from app.model_training.service import train_model
from app.retraining import jobs
from app.retraining.datasets import build_job_dataset, dataset_spec
from app.retraining.heartbeat import Heartbeat
from app.retraining.pieces import join_job_pieces
from app.retraining.spec import DataSelection

if TYPE_CHECKING:
    from app.core.container import Container

log = logging.getLogger(__name__)

FINAL_MODEL_STATES = (jobs.TRAINED, jobs.FAILED)


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:1000]


def prepare_dataset(container: Container, job_id: str) -> dict[str, Any]:
    """Build (or reuse) the job's dataset; records its id or its error in the job."""
    with container.session() as session:
        row = jobs.lock_job(session, job_id)
        meta = dict(row.metadata_ or {})
        if row.status != jobs.RUNNING:
            return {"job_id": job_id, "skipped": row.status}
        if meta.get("dataset_id") or meta.get("dataset_error"):
            return {"job_id": job_id, "dataset_id": meta.get("dataset_id"), "error": meta.get("dataset_error")}
        row.stage, row.progress_pct, row.heartbeat_at = "preparing_dataset", 2.0, utcnow()
    started = time.monotonic()
    try:
        selection = DataSelection.model_validate(meta.get("spec") or {})
        with Heartbeat(container, job_id):
            dataset_id = _build_dataset(container, selection, meta)
        error = None
    except Exception as exc:  # recorded; the training steps then skip and finalize fails the job
        log.exception("job %s: dataset preparation failed", job_id)
        dataset_id, error = None, _error_text(exc)
    with container.session() as session:
        row = jobs.lock_job(session, job_id)
        jobs.set_metadata(
            row, dataset_id=dataset_id, dataset_error=error, dataset_seconds=round(time.monotonic() - started, 3)
        )
        if row.status == jobs.RUNNING:
            row.stage, row.progress_pct, row.heartbeat_at = "training", jobs.training_progress(row), utcnow()
    return {"job_id": job_id, "dataset_id": dataset_id, "error": error}


def _build_dataset(container: Container, selection: DataSelection, meta: dict[str, Any]) -> str:
    count = int(meta.get("dataset_pieces") or 0)
    if count and not selection.dataset_id:
        # A large job: its pieces were prepared by tasks of their own before this one (app/retraining/pieces.py).
        spec = dataset_spec(container.policy_store.get(), selection)
        return join_job_pieces(container, spec, dict(meta.get("pieces") or {}), count)
    return build_job_dataset(container, selection)


def train_one_model(
    container: Container, job_id: str, model_type: str, *, queue: str | None = None, worker: str | None = None
) -> dict[str, Any]:
    """Train one model type for the job and stage it (TRAINING); errors are recorded, not raised."""
    cap = container.policy_store.get().clm_config.max_task_deliveries
    with container.session() as session:
        row = jobs.lock_job(session, job_id)
        entry = dict((row.models_trained or {}).get(model_type) or {})
        if row.status != jobs.RUNNING:
            return {"job_id": job_id, "model_type": model_type, "skipped": row.status}
        if entry.get("status") in FINAL_MODEL_STATES:
            return _summary(job_id, model_type, entry)
        meta = dict(row.metadata_ or {})
        deliveries = dict(meta.get("deliveries") or {})
        deliveries[model_type] = int(deliveries.get(model_type, 0)) + 1
        jobs.set_metadata(row, deliveries=deliveries)
        attempt = {"queue": queue, "worker": worker, "pid": os.getpid(), "deliveries": deliveries[model_type]}
        if deliveries[model_type] > cap:
            # Every earlier delivery died with its worker (OOM, segfault, SIGKILL): stop retrying.
            error = (
                f"given up after {cap} deliveries: the worker running this training died each time "
                f"(last on {entry.get('worker')}, pid {entry.get('pid')})"
            )
            return _summary(job_id, model_type, _finish(row, model_type, status=jobs.FAILED, error=error, **attempt))
        dataset_id = meta.get("dataset_id")
        if not dataset_id:
            error = f"no dataset: {meta.get('dataset_error') or 'the dataset step did not run'}"
            return _summary(job_id, model_type, _finish(row, model_type, status=jobs.FAILED, error=error, **attempt))
        jobs.set_model_result(row, model_type, status=jobs.TRAINING, started_at=utcnow().isoformat(), **attempt)
        row.heartbeat_at = utcnow()
        # A fanned-out job runs its walk-forward folds as tasks of their own (app/retraining/folds.py).
        folds_apart = bool(meta.get("cv_folds"))
    return _train_and_stage(container, job_id, model_type, dataset_id, folds_apart)


def _train_and_stage(
    container: Container, job_id: str, model_type: str, dataset_id: str, folds_apart: bool = False
) -> dict[str, Any]:
    started = time.monotonic()
    trained, error = None, None
    try:
        with Heartbeat(container, job_id):
            trained = train_model(container, model_type, dataset_id, job_id, cross_validation=not folds_apart)
    except Exception as exc:  # one model's failure must not sink the others
        log.exception("job %s: training %s failed", job_id, model_type)
        error = _error_text(exc)
    seconds = round(time.monotonic() - started, 3)
    with container.session() as session:
        row = jobs.lock_job(session, job_id)
        entry = dict((row.models_trained or {}).get(model_type) or {})
        if row.status != jobs.RUNNING or entry.get("status") in FINAL_MODEL_STATES:
            # Cancelled meanwhile, or a duplicate delivery finished first: keep nothing of ours.
            if trained is not None:
                _discard_artifacts(container, trained)
            return {"job_id": job_id, "model_type": model_type, "skipped": row.status, "duplicate": True}
        if trained is None:
            entry = _finish(row, model_type, status=jobs.FAILED, error=error, seconds=seconds)
        else:
            model_id = ModelRegistry(container).stage_model(trained, job_id=job_id, session=session)
            entry = _finish(row, model_type, status=jobs.TRAINED, model_id=model_id, seconds=seconds, error=None)
    return _summary(job_id, model_type, entry)


def _finish(row: Any, model_type: str, **values: Any) -> dict[str, Any]:
    entry = jobs.set_model_result(row, model_type, finished_at=utcnow().isoformat(), **values)
    row.progress_pct = jobs.training_progress(row)
    row.heartbeat_at = utcnow()
    return entry


def _summary(job_id: str, model_type: str, entry: dict[str, Any]) -> dict[str, Any]:
    keys = ("status", "model_id", "error", "queue")
    return {"job_id": job_id, "model_type": model_type} | {k: entry.get(k) for k in keys}


def _discard_artifacts(container: Container, trained: Any) -> None:
    try:
        candidate = ModelCandidate.from_trained(trained)
        container.artifacts.delete(candidate.artifact_dir or artifact_dir(candidate.file_path))
    except Exception:
        log.exception("could not delete the artifacts of a discarded training run")
