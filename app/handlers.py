"""The explicit table of event handlers: which service reacts to which topic.

Handlers are listed here, not discovered, as function references a reader (or a tool)
can follow. Only `app.bootstrap` imports this module.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app.clm import manager
from app.core import system
from app.core.container import Container
from app.model_supervisor import service as model_supervisor
from app.operations import alerts
from app.prediction import service as prediction
from app.rl import meta_strategy, position_sizing
from app.shadow_tester import service as shadow_tester

ContainerHandler = Callable[[Container, dict[str, Any]], None]

# (topic pattern, function taking (container, event)).
HANDLER_TABLE: list[tuple[str, ContainerHandler]] = [
    ("system.ping", system.record_ping),
    # the CLM's reaction table (app/clm/manager.py)
    ("drift.detected", manager.on_drift_detected),
    ("model.performance.degraded", manager.on_performance_degraded),
    ("regime.changed", manager.on_regime_changed),
    ("model.promoted", manager.on_model_promoted),
    # RL agents learn from closed trades (payload keys: app/rl/outcome.py)
    ("execution.trade.closed", meta_strategy.on_trade_closed),
    ("execution.trade.closed", position_sizing.on_trade_closed),
    # shadow tests: trades close the pairs; a new SHADOW model starts its test
    ("execution.trade.closed", shadow_tester.on_trade_closed),
    ("model.registered", shadow_tester.on_model_registered),
    ("execution.trade.closed", model_supervisor.on_trade_closed),
    # the prediction service loads a promoted model before the next request needs it
    ("model.promoted", prediction.on_model_promoted),
    # alerts (app/operations/alerts.py): what can start one is re-checked; each alert goes to the webhook
    ("drift.detected", alerts.check_on_event),
    ("model.performance.degraded", alerts.check_on_event),
    ("clm.retraining.*", alerts.check_on_event),
    ("rl.*.reset", alerts.check_on_event),
    ("shadow.promotion.recommended", alerts.check_on_event),
    ("alert.*", alerts.deliver_webhook),
]


def handler_name(func: ContainerHandler) -> str:
    """The stable name a delivery is recorded under ("module:function")."""
    return f"{func.__module__}:{func.__qualname__}"


def register_handlers(container: Container) -> None:
    for pattern, func in HANDLER_TABLE:

        def handler(event: dict[str, Any], _func: ContainerHandler = func) -> None:
            _func(container, event)

        container.bus.subscribe(pattern, handler, name=handler_name(func))
