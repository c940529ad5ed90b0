"""Drift checks on beat."""

from __future__ import annotations

from typing import Any

from app.bootstrap import get_container
from app.clm.drift_check import run_drift_check as run
from workers.celery_app import celery_app


@celery_app.task(name="tasks.drift.run_drift_check")
def run_drift_check() -> dict[str, Any]:
    """Every drift check for every ACTIVE model; findings reach the CLM as events."""

    summary = run(get_container())
    return {"models": sorted(summary)}
