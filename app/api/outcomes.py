"""Trade outcomes from the trading engine, published as `execution.trade.closed`.

The event is a row in the outbox, committed before the 202: the shadow tester, the RL
agents and the model supervisor take it from there, at least once. What they could never
apply is refused here (422 naming the field): the RL part by the agents' own rules
(`app.rl.outcome.TradeOutcome.from_payload`), a `shadow_test_id` or `prediction_id` that
names nothing, a number that is not finite anywhere in the body.
"""

from __future__ import annotations

import math
from typing import Any

from flask import Blueprint

from app.api.common import container
from app.api.errors import ApiError
from app.api.openapi import operation
from app.api.schemas import OutcomeAccepted, TradeOutcome
from app.core.topics import TradeClosed
from app.rl.decisions import DecisionError, report_trade_closed
from app.rl.outcome import OutcomeError
from app.rl.outcome import TradeOutcome as AgentOutcome
from app.shadow_tester.targets import UnknownOutcomeTarget, named_pairs

bp = Blueprint("outcomes", __name__, url_prefix="/api/outcomes")


def _refused(field: str, reason: str) -> ApiError:
    return ApiError(422, "invalid body", [{"field": f"body.{field}", "reason": reason}])


def _non_finite(value: Any, path: str) -> str | None:
    """The path of the first NaN or infinity in `value` (JSON would store it as null), else None."""
    if isinstance(value, float) and not math.isfinite(value):
        return path
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        found = _non_finite(item, f"{path}.{key}")
        if found is not None:
            return found
    return None


@operation(
    bp, "", "POST", summary="Report a closed trade (published as execution.trade.closed)", tag="outcomes",
    body=TradeOutcome, response=OutcomeAccepted, status=202, auth=True, conflict=True,
)  # fmt: skip
def post_outcome(body: TradeOutcome) -> OutcomeAccepted:
    """Closes exactly the shadow pair named by `shadow_test_id` or `prediction_id`; only an outcome
    naming neither closes the latest open pair of its `symbol` made before the trade opened.

    Decision ids (`meta_decision_id`, `sizing_decision_id`) make each agent learn exactly the
    state and action it decided, once: unknown 422, applied by another trade 409; the same trade
    sent again is answered with its first event (`replayed`), so a retry is safe."""
    payload = body.model_dump(exclude_none=True)
    non_finite = _non_finite(payload, "")
    if non_finite is not None:
        raise _refused(non_finite.lstrip("."), "not a finite number")
    try:
        AgentOutcome.from_payload(payload)
    except OutcomeError as exc:
        raise _refused(exc.field, str(exc)) from None
    c = container()
    with c.session() as session:
        try:
            named_pairs(session, payload)
        except UnknownOutcomeTarget as exc:
            raise _refused(exc.field, str(exc)) from None
    try:
        # Only the keys the engine sent (TradeClosed is stored sparse).
        accepted = report_trade_closed(c, body.model_dump(mode="json", exclude_none=True))
    except DecisionError as exc:
        raise ApiError(exc.status, str(exc), [{"field": f"body.{exc.field}", "reason": exc.reason}]) from None
    return OutcomeAccepted(event_id=accepted.event_id, topic=TradeClosed.topic, replayed=accepted.replayed)
