"""The CLM dashboard at `/`: server-rendered tables, charts drawn by a small local script (no CDN)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from flask import Blueprint, render_template

from app.alerts import current_alerts
from app.api.common import container
from app.api.queries import chart_data, clm_status
from app.clock import utcnow

bp = Blueprint("dashboard", __name__)


def ago(value: datetime | None, now: datetime | None = None) -> str:
    """'2 days ago', 'in 5 days', 'never' (the specification's dashboard wording)."""
    if value is None:
        return "never"
    seconds = ((now or utcnow()) - value).total_seconds()
    span = abs(seconds)
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if span >= size:
            n = int(span // size)
            text = f"{n} {unit}{'s' if n != 1 else ''}"
            break
    else:
        text = "less than a minute"
    return f"{text} ago" if seconds >= 0 else f"in {text}"


def duration(seconds: int | float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}min"
    return f"{seconds}s"


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
        duration=duration,
        charts_json=json.dumps(charts, default=_json_default),
    )
