"""Alert checks on beat: conditions no event announces (a shadow test gone quiet) are noticed here."""

from __future__ import annotations

from typing import Any

from app.bootstrap import get_container
from app.operations.alerts import raise_new_alerts
from workers.celery_app import celery_app


@celery_app.task(name="tasks.alerts.check_alerts")
def check_alerts() -> dict[str, Any]:
    """Raise every alert condition not raised before (app/operations/alerts.py)."""

    return {"raised": [alert.key for alert in raise_new_alerts(get_container())]}
