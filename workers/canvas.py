"""The retraining canvas as data (STYLE 9): built here, unit-tested for its shape, run elsewhere.

    chain(prepare_dataset (cpu) | chord([train_model per type, cpu or gpu], finalize_job))

Each training task goes to `gpu` when its model class says `NEEDS_GPU`, else to `cpu`.
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
PREPARE_DATASET = "tasks.retraining.prepare_dataset"
TRAIN_MODEL = "tasks.retraining.train_model"
FINALIZE_JOB = "tasks.retraining.finalize_job"
FINALIZE_AFTER_FAILURE = "tasks.retraining.finalize_after_failure"


def task_ids(job_id: str, model_types: list[str]) -> dict[str, str]:
    """Every task id of a job's canvas, by step (`prepare`, `train:<type>`, `finalize`)."""
    ids = {"prepare": f"{job_id}.prepare", "finalize": f"{job_id}.finalize"}
    ids |= {f"train:{m}": f"{job_id}.train.{m}" for m in model_types}
    return ids


def training_queue(model_type: str, needs_gpu: Mapping[str, bool] | None = None) -> str:
    if needs_gpu is None:
        return "gpu" if forecaster_class(model_type).NEEDS_GPU else "cpu"
    return "gpu" if needs_gpu[model_type] else "cpu"


def retraining_canvas(
    job_id: str,
    model_types: list[str],
    spec: dict[str, Any] | None = None,
    needs_gpu: Mapping[str, bool] | None = None,
    app: Celery | None = None,
) -> Signature:
    """The canvas of one retraining job (`spec` is stored with the job; it is not sent)."""
    if not model_types:
        raise ValueError(f"job {job_id}: a retraining canvas needs at least one model type")
    ids = task_ids(job_id, model_types)
    header = [
        signature(TRAIN_MODEL, args=(job_id, m), immutable=True, app=app).set(
            queue=training_queue(m, needs_gpu), task_id=ids[f"train:{m}"]
        )
        for m in model_types
    ]
    finalize = signature(FINALIZE_JOB, args=(job_id,), app=app).set(queue="default", task_id=ids["finalize"])
    # A failed training (a FAILURE task) skips the callback; its errback closes the job instead.
    finalize.on_error(signature(FINALIZE_AFTER_FAILURE, args=(job_id,), immutable=True, app=app).set(queue="default"))
    return chain(
        signature(PREPARE_DATASET, args=(job_id,), immutable=True, app=app).set(queue="cpu", task_id=ids["prepare"]),
        chord(header, finalize),
    )
