"""RL agent tasks: learn from a closed trade; periodic snapshot and pruning."""

from __future__ import annotations

import os
from typing import Any

from sqlalchemy.exc import OperationalError

from app.bootstrap import get_container
from app.rl.maintenance import apply_trade_outcome as apply_outcome
from app.rl.maintenance import run_rl_maintenance as run_maintenance
from workers.celery_app import celery_app


# A lost connection or a PostgreSQL serialization failure is worth another try; a retried
# trade that had in fact been committed finds its rl_applied_updates row and does nothing.
@celery_app.task(
    name="tasks.rl.apply_trade_outcome",
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=5,
)
def apply_trade_outcome(payload: dict[str, Any]) -> dict[str, Any]:
    """Both agents learn from one `execution.trade.closed` payload; a redelivery is a no-op."""
    return apply_outcome(get_container(), payload) | {"worker_pid": os.getpid()}


@celery_app.task(name="tasks.rl.run_rl_maintenance")
def run_rl_maintenance() -> dict[str, Any]:
    """Snapshot each agent that changed since its last snapshot; prune stale states."""
    return run_maintenance(get_container())
