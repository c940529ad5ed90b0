"""The Celery implementation of `app.core.dispatch.Dispatcher`, handed to `app/` by the entry points."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

from celery import Celery

from workers.canvas import TRAIN_FOLD, TRAIN_MODEL, retraining_canvas, task_ids, training_queue

DELIVER_EVENTS = "tasks.events.deliver_events"


class CeleryDispatcher:
    """Starts work on `app`'s queues (eagerly, in this process, when the app is configured eager)."""

    def __init__(self, app: Celery) -> None:
        self.app = app
        app.loader.import_default_modules()  # the tasks of conf.include, so eager runs find them

    def deliver_events(self) -> None:
        self.app.tasks[DELIVER_EVENTS].apply_async()

    def start_retraining(
        self, job_id: str, model_types: list[str], spec: dict[str, Any], folds: int = 0, pieces: int = 0
    ) -> None:
        retraining_canvas(job_id, model_types, spec, app=self.app, folds=folds, pieces=pieces).apply_async()

    def retry_training(self, job_id: str, model_type: str) -> None:
        """Outside the chord (its callback waits on the lost task): the lost-task sweep finalizes the job."""
        self.app.tasks[TRAIN_MODEL].apply_async(
            args=(job_id, model_type),
            queue=training_queue(model_type),
            task_id=f"{job_id}.train.{model_type}.{uuid4().hex[:8]}",
        )

    def retry_fold(self, job_id: str, model_type: str, fold: int) -> None:
        """Outside the chord, as `retry_training`: the fold task closes the job when it is the last."""
        self.app.tasks[TRAIN_FOLD].apply_async(
            args=(job_id, model_type, fold),
            queue=training_queue(model_type),
            task_id=f"{job_id}.fold.{model_type}.{fold}.{uuid4().hex[:8]}",
        )

    def cancel_retraining(self, job_id: str, model_types: list[str], folds: int = 0, pieces: int = 0) -> None:
        """Revoke the job's queued tasks (their ids derive from the job id)."""
        self.app.control.revoke(list(task_ids(job_id, model_types, folds, pieces).values()))

    def run_task(self, task_name: str, **kwargs: Any) -> Any:
        """Eager in the embedded mode (runs here), sent to the task's queue otherwise.

        Returns the task's result handle, so a driver (the main run's simulated beat) can wait.
        """
        return self.app.tasks[task_name].apply_async(kwargs=kwargs)
