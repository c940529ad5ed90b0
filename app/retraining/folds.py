"""Walk-forward folds as tasks of their own, and their figures assembled by the job's callback.

A fanned-out job (`metadata.cv_folds` > 0) trains each model type in `cv_folds + 1` tasks:
the final fit (`steps.train_one_model`, without cross-validation) and one task per fold,
which fits the model on the fold's training part and stores the fold's scored test part
(`walk_forward.scored_to_bytes`) under `jobs/<job>/folds/<type>/`. Each fold's state is the
entry `models_trained[<type>]["folds"][<k>]`: training -> scored, or failed with the reason.

A redelivered fold task finds its fold scored (or failed) and does nothing. The callback
(`closing.finalize_job`) pools the stored folds exactly as `service.cross_validate` does,
runs the baseline gate on them and adds both to the staged model's metrics; a model with a
failed or missing fold is not registered: its result is `partial`, with the reason.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from app.core.clock import utcnow
from app.data_pipeline import load_dataset
from app.forecasters import forecaster_class
from app.forecasters.base import FitProgress
from app.model_training.evaluation import Scored, timeframe_ms
from app.model_training.scoring import Bootstrap
from app.model_training.service import fit_and_score, gate_verdict, label_settings, time_ordered, training_setup
from app.model_training.splits import candle_ms, walk_forward_splits
from app.model_training.storage import json_safe
from app.model_training.walk_forward import cv_summary, scored_from_bytes, scored_to_bytes
from app.retraining import jobs
from app.retraining.heartbeat import Heartbeat
from app.retraining.progress import recorder

if TYPE_CHECKING:
    from app.core.container import Container
    from app.core.db.models import RetrainingJob

log = logging.getLogger(__name__)

FINAL_FOLD_STATES = (jobs.SCORED, jobs.FAILED)
# What cutting the folds reads of a dataset (its rows carry no `label_end`: label ends come from the horizon).
AXIS_COLUMNS = ["timestamp", "symbol"]


def canvas_task_count(model_types: list[str], folds: int, pieces: int = 0) -> int:
    """Tasks of a job's canvas: the dataset's pieces and the dataset, per type its final fit and
    its folds, the callback."""
    return pieces + 2 + len(model_types) * (folds + 1)


def fold_entry(row: RetrainingJob, model_type: str, fold: int) -> dict[str, Any]:
    entry = (row.models_trained or {}).get(model_type) or {}
    return dict((entry.get("folds") or {}).get(str(fold)) or {})


def set_fold_result(row: RetrainingJob, model_type: str, fold: int, **values: Any) -> dict[str, Any]:
    """Merge `values` into the fold's entry (new dicts all the way down, so the JSON column is saved)."""
    folds = dict(((row.models_trained or {}).get(model_type) or {}).get("folds") or {})
    folds[str(fold)] = dict(folds.get(str(fold)) or {}) | values
    jobs.set_model_result(row, model_type, folds=folds)
    return folds[str(fold)]


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:1000]


def train_fold(
    container: Container,
    job_id: str,
    model_type: str,
    fold: int,
    *,
    queue: str | None = None,
    worker: str | None = None,
    on_progress: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Fit and score fold `fold` (1-based) of `model_type` for the job; errors are recorded, not raised.
    Its progress (the trees or steps built) goes to the fold's entry and to `on_progress` (Flower)."""
    cap = container.policy_store.get().clm_config.max_task_deliveries
    with container.session() as session:
        row = jobs.lock_job(session, job_id)
        if row.status != jobs.RUNNING:
            return {"job_id": job_id, "model_type": model_type, "fold": fold, "skipped": row.status}
        entry = fold_entry(row, model_type, fold)
        if entry.get("status") in FINAL_FOLD_STATES:
            return _summary(job_id, model_type, fold, entry)  # a redelivery: the fold is done
        meta = dict(row.metadata_ or {})
        folds = int(meta.get("cv_folds") or 0)
        deliveries = int(entry.get("deliveries") or 0) + 1
        attempt = {"queue": queue, "worker": worker, "pid": os.getpid(), "deliveries": deliveries}
        dataset_id = meta.get("dataset_id")
        error = None
        if deliveries > cap:
            error = (
                f"given up after {cap} deliveries: the worker running this fold died each time "
                f"(last on {entry.get('worker')}, pid {entry.get('pid')})"
            )
        elif not 1 <= fold <= folds:
            error = f"fold {fold} is not one of the job's {folds} walk-forward folds"
        elif not dataset_id:
            error = f"no dataset: {meta.get('dataset_error') or 'the dataset step did not run'}"
        if error is not None:
            return _summary(job_id, model_type, fold, _finish(row, model_type, fold, status=jobs.FAILED, error=error))
        set_fold_result(row, model_type, fold, status=jobs.TRAINING, started_at=utcnow().isoformat(), **attempt)
        row.heartbeat_at = utcnow()
    return _score_and_store(container, job_id, model_type, fold, folds, str(dataset_id), on_progress)


def _score_and_store(
    container: Container,
    job_id: str,
    model_type: str,
    fold: int,
    folds: int,
    dataset_id: str,
    on_progress: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    started = time.monotonic()
    progress = recorder(container, job_id, model_type, on_progress, fold=fold)
    stored: dict[str, Any] | None = None
    error = None
    timings: dict[str, float] = {}  # seconds per stage: load, fit, calibration, scoring, artifact_write
    try:
        with Heartbeat(container, job_id):
            progress("cv fold", fold, folds)
            scored, horizon, step_ms = score_fold(container, model_type, dataset_id, fold, folds, progress, timings)
            clock = time.perf_counter()
            stored = store_fold(container, job_id, model_type, fold, scored) | {"horizon": horizon, "step_ms": step_ms}
            timings["artifact_write"] = time.perf_counter() - clock
    except Exception as exc:  # one fold's failure marks its model partial, never the job stuck
        log.exception("job %s: fold %d of %s failed", job_id, fold, model_type)
        error = _error_text(exc)
    seconds = round(time.monotonic() - started, 3)
    with container.session() as session:
        row = jobs.lock_job(session, job_id)
        entry = fold_entry(row, model_type, fold)
        if row.status != jobs.RUNNING or entry.get("status") in FINAL_FOLD_STATES:
            # Cancelled meanwhile, or a duplicate delivery finished first: its files stand.
            return {"job_id": job_id, "model_type": model_type, "fold": fold, "skipped": row.status, "duplicate": True}
        if stored is None:
            entry = _finish(row, model_type, fold, status=jobs.FAILED, error=error, seconds=seconds)
        else:
            stage_seconds = {stage: round(value, 3) for stage, value in timings.items()}
            entry = _finish(
                row,
                model_type,
                fold,
                status=jobs.SCORED,
                error=None,
                seconds=seconds,
                stage_seconds=stage_seconds,
                **stored,
            )
    return _summary(job_id, model_type, fold, entry)


def score_fold(
    container: Container,
    model_type: str,
    dataset_id: str,
    fold: int,
    folds: int,
    progress: FitProgress | None = None,
    timings: dict[str, float] | None = None,
) -> tuple[Scored, int, int]:
    """Fold `fold` of `folds` fitted and scored as `service.cross_validate` scores it; with horizon and candle ms.
    `progress` hears the trees or steps built inside the fit; `timings` (when given) gains the seconds of
    "load", "fit", "calibration" and "scoring"."""
    model_class = forecaster_class(model_type)
    clock = time.perf_counter()
    # The folds are cut on the time axis alone; then only the rows up to the fold's test end are read
    # (the file's later row groups are skipped). Rows keep their positions: the frame is time-major.
    axis, manifest = load_dataset(container, dataset_id, columns=AXIS_COLUMNS)
    axis = time_ordered(axis)
    horizon = label_settings(manifest, container.policy_store.get())["horizon"]
    step_ms = timeframe_ms(manifest["timeframe"]) if manifest.get("timeframe") else candle_ms(axis)
    split = walk_forward_splits(axis, folds, purge=horizon, step_ms=step_ms)[fold - 1]
    before_ms = int(axis["timestamp"].to_numpy()[split.test].max()) + 1
    rows = int((axis["timestamp"].to_numpy() < before_ms).sum())
    del axis
    setup = training_setup(container, model_class, dataset_id, before_ms=before_ms)
    if len(setup.frame) != rows:
        raise RuntimeError(f"fold {fold}: read {len(setup.frame)} rows before {before_ms}, the time axis has {rows}")
    if timings is not None:
        timings["load"] = time.perf_counter() - clock
    _, scored = fit_and_score(model_class, setup.spec, setup.frame, split, setup.step_ms, progress, timings)
    return scored, setup.spec.horizon, setup.step_ms


def fold_directory(job_id: str, model_type: str) -> str:
    return f"jobs/{job_id}/folds/{model_type}"


def store_fold(container: Container, job_id: str, model_type: str, fold: int, scored: Scored) -> dict[str, Any]:
    """Write the fold's scored part; returns the paths and sha256s its entry keeps."""
    table, errors = scored_to_bytes(scored)
    directory = fold_directory(job_id, model_type)
    table_file = container.artifacts.put_bytes(f"{directory}/fold-{fold}.parquet", table)
    errors_file = container.artifacts.put_bytes(f"{directory}/fold-{fold}.json", errors)
    return {
        "table_path": table_file.path,
        "table_sha256": table_file.sha256,
        "errors_path": errors_file.path,
        "errors_sha256": errors_file.sha256,
    }


def _finish(row: RetrainingJob, model_type: str, fold: int, **values: Any) -> dict[str, Any]:
    entry = set_fold_result(row, model_type, fold, finished_at=utcnow().isoformat(), **values)
    row.progress_pct = jobs.training_progress(row)
    row.heartbeat_at = utcnow()
    return entry


def _summary(job_id: str, model_type: str, fold: int, entry: dict[str, Any]) -> dict[str, Any]:
    keys = ("status", "error", "queue")
    return {"job_id": job_id, "model_type": model_type, "fold": fold} | {k: entry.get(k) for k in keys}


@dataclass(frozen=True)
class Assembled:
    """A model type's folds put together: its walk-forward figures and gate, or why there are none."""

    checks: dict[str, Any] | None
    reason: str | None


def assemble(container: Container, row: RetrainingJob, model_type: str) -> Assembled:
    """Pool the type's stored folds into `cross_validation` and `gate` (as `train_model` computes
    them in one process), or the reason a fold is missing: the model is then partial."""
    folds = int((row.metadata_ or {}).get("cv_folds") or 0)
    entries = [fold_entry(row, model_type, k) for k in range(1, folds + 1)]
    problems = []
    for k, entry in enumerate(entries, start=1):
        if entry.get("status") == jobs.FAILED:
            problems.append(f"fold {k} of {folds} failed: {entry.get('error')}")
        elif entry.get("status") != jobs.SCORED:
            problems.append(f"fold {k} of {folds} never reported (its worker was lost)")
    if problems:
        return Assembled(None, "walk-forward incomplete: " + "; ".join(problems))
    try:
        scored = [
            scored_from_bytes(
                container.artifacts.get_bytes(e["table_path"], e["table_sha256"]),
                container.artifacts.get_bytes(e["errors_path"], e["errors_sha256"]),
            )
            for e in entries
        ]
    except Exception as exc:
        return Assembled(None, f"walk-forward incomplete: a stored fold is unreadable: {_error_text(exc)}")
    policy = container.policy_store.get()
    horizon, step_ms = int(entries[0]["horizon"]), int(entries[0]["step_ms"])
    bootstrap = Bootstrap(replicates=policy.clm_config.baseline_gate.bootstrap_replicates, seed=policy.training.seed)
    cv = cv_summary(scored, horizon=horizon, step_ms=step_ms, bootstrap=bootstrap)
    return Assembled(json_safe({"cross_validation": cv, "gate": gate_verdict(cv, policy)}), None)
