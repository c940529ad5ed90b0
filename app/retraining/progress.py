"""A training's progress, recorded where an operator sees it: the job's entry for the model (API, CLI),
the job's percentage, and a hook the task gives (Flower's PROGRESS state); one worker log line a stage.

A training reports (stage, done, total) (`app.model_training.service.Progress`): each stage as it
starts (fit, cv fold k of n, storing) and, inside each fit, the trees or training steps built so far
(`app.forecasters.base.FitProgress`), after every tree or step. Those are recorded at most once per
`PROGRESS_WRITE_S`, and the end of each fit always; the worker logs them at most once per
`PROGRESS_LOG_S`, and the end of each fit.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from app.model_training.service import Progress
from app.retraining import jobs

if TYPE_CHECKING:
    from app.core.container import Container

log = logging.getLogger(__name__)

FIT_UNITS = ("trees", "steps")
PROGRESS_WRITE_S = 1.0
PROGRESS_LOG_S = 30.0


def recorder(
    container: Container,
    job_id: str,
    model_type: str,
    on_progress: Callable[[dict[str, Any]], None] | None = None,
    fold: int | None = None,
) -> Progress:
    """A `Progress` that records into the model's entry (or, with `fold`, that fold's entry of a
    fanned-out job) while it is training, and hands each write to `on_progress`."""
    started = time.monotonic()
    state: dict[str, Any] = {"stage": {}, "in_fit": None, "written": -PROGRESS_WRITE_S, "logged": started}
    who = model_type if fold is None else f"{model_type} fold {fold}"

    def write(progress: dict[str, Any]) -> None:
        try:
            with container.session() as session:
                row = jobs.lock_job(session, job_id)
                entry = (row.models_trained or {}).get(model_type) or {}
                if fold is not None:
                    entry = (entry.get("folds") or {}).get(str(fold)) or {}
                if entry.get("status") == jobs.TRAINING:
                    if fold is None:
                        jobs.set_model_result(row, model_type, progress=progress)
                    else:
                        folds = dict((row.models_trained or {}).get(model_type, {}).get("folds") or {})
                        folds[str(fold)] = dict(entry) | {"progress": progress}
                        jobs.set_model_result(row, model_type, folds=folds)
                    row.progress_pct = max(row.progress_pct or 0.0, jobs.training_progress(row))
            if on_progress is not None:
                extra = {} if fold is None else {"fold": fold}
                on_progress({"job_id": job_id, "model_type": model_type} | extra | progress)
        except Exception:  # progress is for watching; it never stops a training
            log.warning("job %s: could not record %s progress", job_id, who, exc_info=True)

    def record(stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        seconds = round(now - started, 1)
        if stage in FIT_UNITS:
            inner = {"unit": stage, "done": done, "total": total}
            ended = done >= total
            if inner == state["in_fit"] or (not ended and now - state["written"] < PROGRESS_WRITE_S):
                return
            state["in_fit"] = inner
            progress = state["stage"] | {"seconds": seconds, "in_fit": inner}
            if ended or now - state["logged"] >= PROGRESS_LOG_S:
                log.info("job %s: %s %s (%.1f s in)", job_id, model_type, jobs.progress_label(progress), seconds)
                state["logged"] = now
        else:
            label = f"{stage} {done} of {total}" if stage == "cv fold" else stage
            state["stage"], state["in_fit"] = {"stage": label, "done": done, "total": total}, None
            progress = state["stage"] | {"seconds": seconds}
            log.info("job %s: %s %s (%.1f s in)", job_id, model_type, label, seconds)
            state["logged"] = now
        state["written"] = now
        write(progress)

    return record
