"""Every task is routed on purpose (STYLE 8): this table is the single source of truth.

`tests/unit/test_routing.py` fails when a registered task has no entry here.
"""

from __future__ import annotations

from typing import Any

QUEUES = ("default", "cpu", "gpu")

TASK_ROUTES: dict[str, str] = {
    # market data (issue 3)
    "tasks.data.refresh_candles": "cpu",
    # alerts (app/operations/alerts.py): the periodic check of conditions no event announces
    "tasks.alerts.check_alerts": "default",
    # drift checks (the CLM reacts to their events)
    "tasks.drift.run_drift_check": "cpu",
    # events and control
    "tasks.events.deliver_events": "default",
    "tasks.maintenance.health_ping": "default",
    "tasks.maintenance.apply_retention": "default",
    # retraining (issue 5): the chord's header tasks are sent to cpu or gpu by workers/canvas.py
    "tasks.retraining.prepare_dataset": "cpu",
    "tasks.retraining.prepare_piece": "cpu",
    "tasks.retraining.train_model": "cpu",
    "tasks.retraining.train_fold": "cpu",
    "tasks.retraining.finalize_job": "default",
    "tasks.retraining.finalize_after_failure": "default",
    "tasks.retraining.scheduled_full_retraining": "default",
    "tasks.retraining.close_stale_jobs": "default",
    # market regime (issue 16): regime.changed, to which the CLM reacts
    "tasks.regime.detect_regimes": "default",
    # RL agents (issue 8)
    "tasks.rl.apply_trade_outcome": "default",
    "tasks.rl.run_rl_maintenance": "default",
    # shadow tests and model health (issue 6)
    "tasks.shadow.evaluate_all_shadows": "default",
    "tasks.shadow.resolve_outcomes": "default",
    "tasks.supervisor.check_all_models": "default",
}


def route_task(name: str, args: Any, kwargs: Any, options: Any, task: Any = None, **kw: Any) -> dict[str, str] | None:
    """Celery router: our tasks by the table; Celery's own (chord unlock, ...) by default."""
    queue = TASK_ROUTES.get(name)
    if queue is None:
        return None
    return {"queue": queue}
