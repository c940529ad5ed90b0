"""Trade outcomes from the trading engine, published as `execution.trade.closed`.

The event is a row in the outbox, committed before the 202: the shadow tester, the RL
agents and the model supervisor take it from there, at least once.
"""

from __future__ import annotations

from flask import Blueprint

from app.api.common import container
from app.api.errors import ApiError
from app.api.openapi import operation
from app.api.schemas import OutcomeAccepted, TradeOutcome
from app.core.topics import TradeClosed
from app.rl.decisions import DecisionError, report_trade_closed

bp = Blueprint("outcomes", __name__, url_prefix="/api/outcomes")


@operation(
    bp, "", "POST", summary="Report a closed trade (published as execution.trade.closed)", tag="outcomes",
    body=TradeOutcome, response=OutcomeAccepted, status=202, auth=True, conflict=True,
)  # fmt: skip
def post_outcome(body: TradeOutcome) -> OutcomeAccepted:
    """Decision ids (`meta_decision_id`, `sizing_decision_id`) make each agent learn exactly the
    state and action it decided, once: unknown 422, applied by another trade 409; the same trade
    sent again is answered with its first event (`replayed`), so a retry is safe."""
    try:
        # Only the keys the engine sent (TradeClosed is stored sparse).
        accepted = report_trade_closed(container(), body.model_dump(mode="json", exclude_none=True))
    except DecisionError as exc:
        raise ApiError(exc.status, str(exc), [{"field": f"body.{exc.field}", "reason": exc.reason}]) from None
    return OutcomeAccepted(event_id=accepted.event_id, topic=TradeClosed.topic, replayed=accepted.replayed)
