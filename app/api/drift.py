"""Drift events."""

from __future__ import annotations

from flask import Blueprint

from app.api.common import container
from app.api.openapi import operation
from app.api.queries import list_drift_events
from app.api.schemas import DriftEventList, DriftEventOut, DriftQuery

bp = Blueprint("drift", __name__, url_prefix="/api/drift")


@operation(bp, "/events", summary="Drift events, newest first", tag="drift", query=DriftQuery, response=DriftEventList)
def get_drift_events(query: DriftQuery) -> DriftEventList:
    with container().session() as session:
        rows = list_drift_events(session, query.severity, query.model_type, query.limit)
    return DriftEventList(events=[DriftEventOut.model_validate(r) for r in rows])
