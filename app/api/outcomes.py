"""Trade outcomes from the trading engine, published as `execution.trade.closed`.

The event is a row in the outbox, committed before the 202: the shadow tester, the RL
agents and the model supervisor take it from there, at least once.
"""

from __future__ import annotations

from flask import Blueprint

from app.api.common import container
from app.api.openapi import operation
from app.api.schemas import OutcomeAccepted, TradeOutcome
from app.core.topics import TradeClosed

bp = Blueprint("outcomes", __name__, url_prefix="/api/outcomes")


@operation(
    bp, "", "POST", summary="Report a closed trade (published as execution.trade.closed)", tag="outcomes",
    body=TradeOutcome, response=OutcomeAccepted, status=202, auth=True,
)  # fmt: skip
def post_outcome(body: TradeOutcome) -> OutcomeAccepted:
    c = container()
    with c.session() as session:
        # Only the keys the engine sent (TradeClosed is stored sparse).
        event = c.bus.publish(session, TradeClosed(**body.model_dump(mode="json", exclude_none=True)))
        session.flush()
        event_id = event.id
    return OutcomeAccepted(event_id=event_id, topic=TradeClosed.topic)
