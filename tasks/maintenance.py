"""Small operational tasks."""

from __future__ import annotations

import os
import socket
from typing import Any

from app.bootstrap import get_container
from app.operations.telemetry_retention import apply_retention as run
from workers.celery_app import celery_app


@celery_app.task(name="tasks.maintenance.health_ping")
def health_ping() -> dict[str, Any]:
    """Answer with the worker's identity: used by /health and the tests to see a worker."""
    return {"host": socket.gethostname(), "pid": os.getpid()}


@celery_app.task(name="tasks.maintenance.apply_retention")
def apply_retention() -> dict[str, Any]:
    """Delete the telemetry the policy no longer keeps (app/operations/telemetry_retention.py)."""

    return run(get_container()).to_dict()
