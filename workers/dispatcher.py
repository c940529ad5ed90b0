"""The Celery implementation of `app.dispatcher.Dispatcher`."""

from __future__ import annotations

from typing import Any


class CeleryDispatcher:
    def deliver_events(self) -> None:
        from tasks.events import deliver_events

        deliver_events.apply_async()

    def start_retraining(self, job_id: str, model_types: list[str], spec: dict[str, Any]) -> None:
        from workers.canvas import retraining_canvas

        retraining_canvas(job_id, model_types, spec).apply_async()

    def cancel_retraining(self, job_id: str, model_types: list[str]) -> None:
        """Revoke the job's queued tasks (their ids derive from the job id)."""
        from workers.canvas import task_ids
        from workers.celery_app import celery_app

        celery_app.control.revoke(list(task_ids(job_id, model_types).values()))

    def run_task(self, task_name: str, **kwargs: Any) -> Any:
        """Eager in the embedded mode (runs here), sent to the task's queue otherwise.

        Returns the task's result handle, so a driver (the main run's simulated beat) can wait.
        """
        from workers.celery_app import celery_app

        celery_app.loader.import_default_modules()
        return celery_app.tasks[task_name].apply_async(kwargs=kwargs)
