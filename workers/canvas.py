"""The retraining canvas as data (STYLE 9): built here, unit-tested for its shape, run elsewhere.

    chain([chord(prepare_piece per group of symbols) ->] prepare_dataset (cpu)
          | chord([train_model per type, train_fold per (type, fold)], finalize_job))

Each model type is one final fit (`train_model`) and, when the job fans out (`folds` > 0),
one task per walk-forward fold (`train_fold`), all on `gpu` when the model class says
`NEEDS_GPU`, else on `cpu`; the callback pools the folds' figures. With `folds` 0 each
`train_model` runs its folds itself (the canvas of jobs started before the fan-out).
The header is ordered longest first (every final fit, then the folds from the last, the one
with the most training rows), so a worker that frees up takes the longest task left.
Task ids are derived from the job id, so cancelling a job can revoke them without having
stored anything. The dataset spec travels in the job row, not in the messages.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from celery import Celery, chain, chord, signature
from celery.canvas import Signature

from app.forecasters import forecaster_class

# The tasks are named, not imported: the canvas is data, and tasks/ imports the Celery app.
PREPARE_PIECE = "tasks.retraining.prepare_piece"
PREPARE_DATASET = "tasks.retraining.prepare_dataset"
TRAIN_MODEL = "tasks.retraining.train_model"
TRAIN_FOLD = "tasks.retraining.train_fold"
FINALIZE_JOB = "tasks.retraining.finalize_job"
FINALIZE_AFTER_FAILURE = "tasks.retraining.finalize_after_failure"


def task_ids(job_id: str, model_types: list[str], folds: int = 0, pieces: int = 0) -> dict[str, str]:
    """Every task id of a job's canvas, by step (`piece:<k>`, `prepare`, `train:<type>`, `fold:<type>:<k>`,
    `finalize`)."""
    ids = {f"piece:{k}": f"{job_id}.piece.{k}" for k in range(1, pieces + 1)}
    ids |= {"prepare": f"{job_id}.prepare", "finalize": f"{job_id}.finalize"}
    ids |= {f"train:{m}": f"{job_id}.train.{m}" for m in model_types}
    ids |= {f"fold:{m}:{k}": f"{job_id}.fold.{m}.{k}" for m in model_types for k in range(1, folds + 1)}
    return ids


def training_queue(model_type: str, needs_gpu: Mapping[str, bool] | None = None) -> str:
    if needs_gpu is None:
        return "gpu" if forecaster_class(model_type).NEEDS_GPU else "cpu"
    return "gpu" if needs_gpu[model_type] else "cpu"


def training_header(
    job_id: str,
    model_types: list[str],
    folds: int = 0,
    needs_gpu: Mapping[str, bool] | None = None,
    app: Celery | None = None,
) -> list[Signature]:
    """The chord's header: every final fit, then every fold, last fold first."""
    ids = task_ids(job_id, model_types, folds)
    queues = {m: training_queue(m, needs_gpu) for m in model_types}
    header = [
        signature(TRAIN_MODEL, args=(job_id, m), immutable=True, app=app).set(
            queue=queues[m], task_id=ids[f"train:{m}"]
        )
        for m in model_types
    ]
    header += [
        signature(TRAIN_FOLD, args=(job_id, m, k), immutable=True, app=app).set(
            queue=queues[m], task_id=ids[f"fold:{m}:{k}"]
        )
        for k in range(folds, 0, -1)
        for m in model_types
    ]
    return header


def retraining_canvas(
    job_id: str,
    model_types: list[str],
    spec: dict[str, Any] | None = None,
    needs_gpu: Mapping[str, bool] | None = None,
    app: Celery | None = None,
    folds: int = 0,
    pieces: int = 0,
) -> Signature:
    """The canvas of one retraining job (`spec` is stored with the job; it is not sent)."""
    if not model_types:
        raise ValueError(f"job {job_id}: a retraining canvas needs at least one model type")
    if folds < 0:
        raise ValueError(f"job {job_id}: folds must be 0 or more, got {folds}")
    ids = task_ids(job_id, model_types, folds, pieces)
    header = training_header(job_id, model_types, folds, needs_gpu, app)
    prepare = signature(PREPARE_DATASET, args=(job_id,), immutable=True, app=app).set(
        queue="cpu", task_id=ids["prepare"]
    )
    if pieces:
        # A large dataset: one task per group of symbols, joined by the dataset step.
        piece_tasks = [
            signature(PREPARE_PIECE, args=(job_id, k), immutable=True, app=app).set(
                queue="cpu", task_id=ids[f"piece:{k}"]
            )
            for k in range(1, pieces + 1)
        ]
        prepare = chord(piece_tasks, prepare)
    finalize = signature(FINALIZE_JOB, args=(job_id,), app=app).set(queue="default", task_id=ids["finalize"])
    # A failed training (a FAILURE task) skips the callback; its errback closes the job instead.
    finalize.on_error(signature(FINALIZE_AFTER_FAILURE, args=(job_id,), immutable=True, app=app).set(queue="default"))
    return chain(
        prepare,
        chord(header, finalize),
    )
