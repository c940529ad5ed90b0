"""The CLM dashboard at `/`: server-rendered tables, charts drawn by a small local script (no CDN)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from flask import Blueprint, render_template

from app.api.common import container
from app.core.clock import utcnow
from app.operations.alerts import current_alerts
from app.operations.formatting import ago, duration, every
from app.operations.read_models import chart_data, clm_status

bp = Blueprint("dashboard", __name__)


def _json_default(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


@bp.get("/")
def dashboard() -> str:
    c = container()
    with c.session() as session:
        policy = c.policy_store.get(session)
        status = clm_status(session, policy)
        charts = chart_data(session)
        alerts = current_alerts(session)
    return render_template(
        "dashboard.html",
        status=status,
        alerts=alerts,
        now=utcnow(),
        ago=ago,
        every=every,
        duration=duration,
        charts_json=json.dumps(charts, default=_json_default),
    )
