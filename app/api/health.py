"""`/health`: database and broker reachability."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify

from app.api.common import container_of
from app.operations.status import broker_health, database_health

bp = Blueprint("health", __name__)


@bp.get("/health")
def health() -> Any:
    container = container_of(current_app)
    database = database_health(container)
    broker = broker_health(container)
    ok = database["ok"] and broker["ok"]
    body = {
        "status": "ok" if ok else "degraded",
        "mode": container.settings.mode.value,
        "database": database,
        "broker": broker,
    }
    return jsonify(body), 200 if ok else 503
