"""The retraining canvas's steps as services: each re-reads the job by id and is idempotent.

`prepare_dataset` -> `train_one_model` (one per model type, in parallel) -> `finalize_job`.
A step never raises for a domain failure: it records the error in the job and returns a
small dict, so the chord's callback always runs (an exception in a chord header would
skip it). A redelivered step finds its work done, or the job closed, and does nothing.

The chord's state lives in the broker's result backend; a Redis restart loses it and the
callback never comes. So the training task that records the job's last result closes the
job itself (`train_and_close`): the job row says which trainings are done, and
`finalize_job` runs once (it locks the row and acts only on a running job); a callback that
still arrives finds the job closed.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from app.core.clock import utcnow
from app.core.db.models import RetrainingJob
from app.model_registry import ModelCandidate, ModelRegistry, artifact_dir
from app.model_training.service import train_model
from app.retraining import closing, jobs
from app.retraining.datasets import build_job_dataset, dataset_spec
from app.retraining.heartbeat import Heartbeat
from app.retraining.pieces import join_job_pieces
from app.retraining.progress import recorder
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
    seconds = round(time.monotonic() - started, 3)
    # One line per stage with its time: an operator follows a long job in the worker's log.
    log.info("job %s: dataset %s in %.1f s", job_id, dataset_id or f"failed ({error})", seconds)
    with container.session() as session:
        row = jobs.lock_job(session, job_id)
        jobs.set_metadata(row, dataset_id=dataset_id, dataset_error=error, dataset_seconds=seconds)
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
    container: Container,
    job_id: str,
    model_type: str,
    *,
    queue: str | None = None,
    worker: str | None = None,
    on_progress: Callable[[dict[str, Any]], None] | None = None,
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
        now = utcnow().isoformat()
        jobs.set_model_result(row, model_type, status=jobs.TRAINING, started_at=now, heartbeat_at=now, **attempt)
        row.heartbeat_at = utcnow()
        # A fanned-out job runs its walk-forward folds as tasks of their own (app/retraining/folds.py).
        folds_apart = bool(meta.get("cv_folds"))
    return _train_and_stage(container, job_id, model_type, dataset_id, on_progress, folds_apart)


def train_and_close(
    container: Container,
    job_id: str,
    model_type: str,
    *,
    queue: str | None = None,
    worker: str | None = None,
    on_progress: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """`train_one_model`, then close the job when every training of it has a final result."""
    summary = train_one_model(container, job_id, model_type, queue=queue, worker=worker, on_progress=on_progress)
    close_if_done(container, job_id)
    return summary


def close_if_done(container: Container, job_id: str) -> None:
    """Close the job when every training task of it (final fits and folds) has a result: the job's
    own records decide, so a chord whose state died with the broker does not hold it open."""
    try:
        if all_trainings_done(container, job_id):
            closing.finalize_job(container, job_id)
    except Exception:  # the chord's callback or the stale-job sweep closes it instead
        log.exception("job %s: closing after the last training failed", job_id)


def all_trainings_done(container: Container, job_id: str) -> bool:
    """Whether the job is running and each of its model types has a final result (trained or failed)."""
    with container.session() as session:
        row = session.get(RetrainingJob, job_id)
        if row is None or row.status != jobs.RUNNING:
            return False
        results = row.models_trained or {}
        folds = int((row.metadata_ or {}).get("cv_folds") or 0)
        return all(_final(results.get(m) or {}, folds) for m in row.model_types or [])


def _final(entry: dict[str, Any], folds: int) -> bool:
    """A model's final fit has its result, and (a fanned-out job) so has each of its folds."""
    if entry.get("status") not in FINAL_MODEL_STATES:
        return False
    fold_entries = entry.get("folds") or {}
    return entry.get("status") == jobs.FAILED or all(
        (fold_entries.get(str(k)) or {}).get("status") in (jobs.SCORED, jobs.FAILED) for k in range(1, folds + 1)
    )


def _train_and_stage(
    container: Container,
    job_id: str,
    model_type: str,
    dataset_id: str,
    on_progress: Callable[[dict[str, Any]], None] | None = None,
    folds_apart: bool = False,
) -> dict[str, Any]:
    started = time.monotonic()
    trained, error = None, None
    log.info("job %s: training %s on dataset %s", job_id, model_type, dataset_id)
    progress = recorder(container, job_id, model_type, on_progress)
    try:
        with Heartbeat(container, job_id, model_type):
            trained = train_model(container, model_type, dataset_id, job_id, progress, cross_validation=not folds_apart)
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
            clock = time.perf_counter()
            model_id = ModelRegistry(container).stage_model(trained, job_id=job_id, session=session)
            stage_seconds = trained.stage_seconds | {"registration": round(time.perf_counter() - clock, 3)}
            entry = _finish(
                row,
                model_type,
                status=jobs.TRAINED,
                model_id=model_id,
                seconds=seconds,
                error=None,
                stage_seconds=stage_seconds,
            )
    log.info("job %s: %s %s in %.1f s", job_id, model_type, entry.get("model_id") or f"failed ({error})", seconds)
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
