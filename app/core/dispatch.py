"""The small interface through which `app/` asks for work to be started.

`app/` never imports Celery: the Celery side implements this protocol and bootstrap
injects it, so imports run one way (tasks/ and workers/ know app/, never the reverse).
"""

from __future__ import annotations

from typing import Any, Protocol


class Dispatcher(Protocol):
    def deliver_events(self) -> None:
        """Run event delivery soon (on a worker, or inline)."""

    def start_retraining(
        self, job_id: str, model_types: list[str], spec: dict[str, Any], folds: int = 0, pieces: int = 0
    ) -> None:
        """Start the retraining canvas for an existing `retraining_jobs` row (`folds`: walk-forward
        folds as tasks of their own, one per model type and fold; 0: inside each training task;
        `pieces`: the dataset prepared in that many tasks first, 0: by the dataset step alone)."""

    def run_task(self, task_name: str, **kwargs: Any) -> Any:
        """Run a task by name (the simulated beat, the API); returns a handle whose `id` can be followed."""

    def retry_training(self, job_id: str, model_type: str) -> None:
        """Send one model type's training task of a running job again (its first delivery was lost)."""

    def retry_fold(self, job_id: str, model_type: str, fold: int) -> None:
        """Send one walk-forward fold task of a running job again (its message was lost)."""


class InlineDispatcher:
    """Runs nothing by itself: for code paths (and tests) that need no background work."""

    def __init__(self) -> None:
        self.started: list[tuple[str, list[str], dict[str, Any]]] = []

    def deliver_events(self) -> None:
        return None

    def start_retraining(
        self, job_id: str, model_types: list[str], spec: dict[str, Any], folds: int = 0, pieces: int = 0
    ) -> None:
        self.started.append((job_id, model_types, spec))

    def run_task(self, task_name: str, **kwargs: Any) -> None:
        self.started.append((task_name, [], kwargs))

    def retry_training(self, job_id: str, model_type: str) -> None:
        self.started.append(("retry_training", [model_type], {"job_id": job_id}))

    def retry_fold(self, job_id: str, model_type: str, fold: int) -> None:
        self.started.append(("retry_fold", [model_type], {"job_id": job_id, "fold": fold}))
