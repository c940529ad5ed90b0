"""Drift events; run a drift check now."""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint

from app.api.common import container
from app.api.openapi import operation
from app.api.schemas import DriftCheckAccepted, DriftEventList, DriftEventOut, DriftQuery
from app.operations.read_models import drift_status, list_drift_events

bp = Blueprint("drift", __name__, url_prefix="/api/drift")


@operation(bp, "/events", summary="Drift events, newest first", tag="drift", query=DriftQuery, response=DriftEventList)
def get_drift_events(query: DriftQuery) -> DriftEventList:
    with container().session() as session:
        rows = list_drift_events(session, query.severity, query.model_type, query.limit)
    return DriftEventList(events=[DriftEventOut.model_validate(r) for r in rows])


DRIFT_CHECK_TASK = "tasks.drift.run_drift_check"


@operation(
    bp, "/check", "POST", summary="Run every drift check for every ACTIVE model now (on a worker)", tag="drift",
    response=DriftCheckAccepted, status=202, auth=True,
)  # fmt: skip
def post_drift_check() -> DriftCheckAccepted:
    """Findings become `drift_events` rows and `drift.detected` events; the CLM reacts to them."""
    c = container()
    handle = c.dispatcher.run_task(DRIFT_CHECK_TASK)
    with c.session() as session:
        last = drift_status(session, timedelta(hours=1))["last_check"]
    return DriftCheckAccepted(task=DRIFT_CHECK_TASK, task_id=getattr(handle, "id", None), last_check=last)
