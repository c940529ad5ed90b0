"""Model supervisor task: the hourly health check of every ACTIVE model."""

from __future__ import annotations

from typing import Any

from app.bootstrap import get_container
from app.model_supervisor import ModelSupervisor
from workers.celery_app import celery_app


@celery_app.task(name="tasks.supervisor.check_all_models")
def check_all_models() -> dict[str, Any]:
    """Write a performance log per ACTIVE model; unhealthy ones publish `model.performance.degraded`."""
    report = ModelSupervisor(get_container()).check_all_models()
    return {"models": [{"model_id": h.model_id, "status": h.status, "reasons": h.reasons} for h in report]}
