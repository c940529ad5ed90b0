"""Event delivery on workers (distributed mode)."""

from __future__ import annotations

from typing import Any

from app.bootstrap import get_container
from workers.celery_app import celery_app


@celery_app.task(name="tasks.events.deliver_events", ignore_result=True)
def deliver_events() -> dict[str, Any]:
    """Deliver every due event; also run by beat as the sweep that retries failures."""
    report = get_container().bus.deliver_pending()
    return {"delivered": report.delivered, "failed": report.failed, "dead": report.dead}
