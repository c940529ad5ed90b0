"""RL decisions served over the API: recorded when made, applied once by the outcome that names them.

A decision row keeps who decided what (agent, live version, state, action) and the answer
as served. `POST /api/outcomes` names decision ids (`meta_decision_id`,
`sizing_decision_id`); `claim_decisions` binds each to the trade in the outcome's own
transaction with a conditional UPDATE, so two outcomes racing for one decision cannot both
win, and the agents learn from the decided state and action rather than from what the
engine says it was. The same trade sent again (a client retry) is recognised as a replay.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, update
from sqlalchemy.orm import Session

from app.core.clock import utcnow
from app.core.db.models import Event, RLDecision
from app.core.topics import TopicEvent, TradeClosed

if TYPE_CHECKING:
    from app.core.container import Container
    from app.core.events import EventBus

META_RL_TYPE, SIZING_RL_TYPE = "meta_strategy", "position_sizing"
# The outcome field that names a decision -> the agent that must have made it.
DECISION_FIELDS = {"meta_decision_id": META_RL_TYPE, "sizing_decision_id": SIZING_RL_TYPE}
# ... and the outcome keys its state and action fill.
DECIDED_KEYS = {
    "meta_decision_id": ("meta_state", "meta_action"),
    "sizing_decision_id": ("sizing_state", "sizing_action"),
}
_PREFIX = {META_RL_TYPE: "meta", SIZING_RL_TYPE: "sizing"}


class DecisionError(ValueError):
    """An outcome's decision id that cannot be applied; `field` names the outcome's key."""

    status = 422

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class DecisionNotFoundError(DecisionError):
    status = 422


class DecisionAlreadyAppliedError(DecisionError):
    status = 409


class DecisionNotTradableError(DecisionError):
    status = 409


def new_decision_id(rl_type: str) -> str:
    return f"{_PREFIX.get(rl_type, rl_type)}-{uuid.uuid4().hex}"


def record_decision(
    session: Session,
    bus: EventBus,
    event: TopicEvent,
    *,
    decision_id: str,
    rl_type: str,
    version: int,
    state: dict[str, Any],
    state_key: str,
    action: str,
    halted: bool,
    allowed: bool,
    detail: dict[str, Any],
) -> None:
    """Record a served decision and its event (`event`, stored for the record: delivered only where
    a handler subscribes to its topic) in `session`'s transaction. On PostgreSQL both rows go in one
    statement (a data-modifying CTE): a decision is asked for every signal."""
    decision = {
        "decision_id": decision_id,
        "rl_type": rl_type,
        "version": version,
        "decided_at": utcnow(),
        "state": state,
        "state_key": state_key,
        "action": action,
        "halted": halted,
        "allowed": allowed,
        "detail": detail,
    }
    values = bus.event_values(event, record_only=True)
    if session.get_bind().dialect.name == "postgresql":
        recorded = insert(RLDecision).values(**decision).cte("recorded")
        session.execute(insert(Event).values(**values).add_cte(recorded))
    else:
        session.execute(insert(RLDecision).values(**decision))
        session.execute(insert(Event).values(**values))
    bus.inserted(session, values)


@dataclass(frozen=True)
class DecisionClaim:
    decisions: dict[str, RLDecision]  # outcome field -> the decision it names
    replay_event_id: int | None  # set when this trade had already claimed them all (a retry)


def claim_decisions(session: Session, trade_id: str, named: dict[str, str]) -> DecisionClaim:
    """Bind the named decisions to `trade_id`; raises a `DecisionError` naming the field.

    The caller's transaction must roll back on an error, so nothing is claimed unless all are.
    """
    rows: dict[str, RLDecision] = {}
    for field, decision_id in named.items():
        row = session.get(RLDecision, decision_id, populate_existing=True)
        if row is None or row.rl_type != DECISION_FIELDS[field]:
            raise DecisionNotFoundError(field, f"no {DECISION_FIELDS[field]} decision {decision_id!r}")
        rows[field] = row
    if rows and all(row.trade_id == trade_id for row in rows.values()):
        event_ids = [row.outcome_event_id for row in rows.values() if row.outcome_event_id is not None]
        return DecisionClaim(rows, event_ids[0] if event_ids else None)
    now = utcnow()
    for field, row in rows.items():
        if row.trade_id is not None:
            applied_by = f"decision {row.decision_id!r} was applied by trade {row.trade_id!r}"
            raise DecisionAlreadyAppliedError(field, applied_by)
        if row.halted or not row.allowed:
            why = "trading was halted" if row.halted else "it allowed no trade"
            raise DecisionNotTradableError(field, f"decision {row.decision_id!r} opened no trade: {why}")
        claimed = session.execute(
            update(RLDecision)
            .where(RLDecision.decision_id == row.decision_id, RLDecision.trade_id.is_(None))
            .values(trade_id=trade_id, applied_at=now)
            .execution_options(synchronize_session=False)
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            raise DecisionAlreadyAppliedError(field, f"decision {row.decision_id!r} was applied by another trade")
    return DecisionClaim(rows, None)


def mark_outcome_event(session: Session, decision_ids: list[str], event_id: int) -> None:
    session.execute(
        update(RLDecision)
        .where(RLDecision.decision_id.in_(decision_ids))
        .values(outcome_event_id=event_id)
        .execution_options(synchronize_session=False)
    )


@dataclass(frozen=True)
class AcceptedOutcome:
    event_id: int
    replayed: bool  # the same trade had claimed the same decisions before: nothing new published


def report_trade_closed(container: Container, payload: dict[str, Any]) -> AcceptedOutcome:
    """Publish `execution.trade.closed` (sparse: the keys given), the decisions it names filled in.

    One transaction: the decisions are claimed and the event is written together, or neither.
    """
    named = {key: str(payload[key]) for key in DECISION_FIELDS if payload.get(key) is not None}
    for key in named:
        given = [k for k in DECIDED_KEYS[key] if payload.get(k) is not None]
        if given:
            raise DecisionError(key, f"the decision gives the state and action; do not send {given} with it")
    with container.session() as session:
        claim = claim_decisions(session, str(payload["trade_id"]), named)
        if claim.replay_event_id is not None:
            return AcceptedOutcome(claim.replay_event_id, True)
        decided = dict(payload)
        for key, row in claim.decisions.items():
            state_key, action_key = DECIDED_KEYS[key]
            decided[state_key], decided[action_key] = row.state, row.action
        event = container.bus.publish(session, TradeClosed(**decided))
        session.flush()
        if named:
            mark_outcome_event(session, list(named.values()), event.id)
        return AcceptedOutcome(event.id, False)
