"""The explicit table of event handlers: which service reacts to which topic.

Handlers are listed here, not discovered. Later modules (shadow tester, RL agents,
CLM, supervisor) add their entries to `HANDLER_TABLE`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.bootstrap import Container

# (topic pattern, "module:function" taking (container, event)).
HANDLER_TABLE: list[tuple[str, str]] = [
    ("system.ping", "app.system:record_ping"),
    # the CLM's reaction table (app/clm/manager.py)
    ("drift.detected", "app.clm.manager:on_drift_detected"),
    ("model.performance.degraded", "app.clm.manager:on_performance_degraded"),
    ("regime.changed", "app.clm.manager:on_regime_changed"),
    ("model.promoted", "app.clm.manager:on_model_promoted"),
    # RL agents learn from closed trades (payload keys: app/rl/outcome.py)
    ("execution.trade.closed", "app.rl_meta_strategy:on_trade_closed"),
    ("execution.trade.closed", "app.rl_position_sizing:on_trade_closed"),
    # shadow tests: trades close the pairs; a new SHADOW model starts its test
    ("execution.trade.closed", "app.shadow_tester.service:on_trade_closed"),
    ("model.registered", "app.shadow_tester.service:on_model_registered"),
    ("execution.trade.closed", "app.model_supervisor:on_trade_closed"),
    # the prediction service loads a promoted model before the next request needs it
    ("model.promoted", "app.prediction_service:on_model_promoted"),
    # alerts (app/alerts.py): what can start one is re-checked; each alert goes to the webhook
    ("drift.detected", "app.alerts:check_on_event"),
    ("model.performance.degraded", "app.alerts:check_on_event"),
    ("clm.retraining.*", "app.alerts:check_on_event"),
    ("rl.*.reset", "app.alerts:check_on_event"),
    ("shadow.promotion.recommended", "app.alerts:check_on_event"),
    ("alert.*", "app.alerts:deliver_webhook"),
]


def register_handlers(container: Container) -> None:
    for pattern, target in HANDLER_TABLE:
        module_name, func_name = target.split(":")

        def handler(event: dict[str, Any], _m: str = module_name, _f: str = func_name) -> None:
            getattr(importlib.import_module(_m), _f)(container, event)

        container.bus.subscribe(pattern, handler, name=target)
