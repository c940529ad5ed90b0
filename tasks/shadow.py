"""Shadow-test tasks: close pairs from the candles, evaluate every shadow (hourly on beat)."""

from __future__ import annotations

from typing import Any

from app.bootstrap import get_container
from app.model_supervisor import ModelSupervisor
from app.shadow_tester import ShadowTester
from workers.celery_app import celery_app


@celery_app.task(name="tasks.shadow.evaluate_all_shadows")
def evaluate_all_shadows() -> dict[str, Any]:
    """Resolve what the candles can close, then promote or reject every SHADOW model that is ready."""
    return {"shadows": ShadowTester(get_container()).evaluate_all_shadows()}


@celery_app.task(name="tasks.shadow.resolve_outcomes")
def resolve_outcomes() -> dict[str, Any]:
    """Close, from the candles, the open shadow pairs and prediction logs whose horizon has passed."""

    container = get_container()
    pairs = ShadowTester(container).resolve_outcomes()
    return pairs | {"prediction_logs_resolved": ModelSupervisor(container).resolve_outcomes()}
