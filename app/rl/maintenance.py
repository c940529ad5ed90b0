"""RL maintenance (specification: run_rl_maintenance): snapshot both agents, prune stale states."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from app.rl.meta_strategy import RLMetaStrategy
from app.rl.outcome import TradeOutcome
from app.rl.position_sizing import RLPositionSizing

if TYPE_CHECKING:
    from app.core.container import Container


def run_rl_maintenance(container: Container) -> dict[str, Any]:
    return {
        agent.rl_type: agent.run_maintenance() for agent in (RLMetaStrategy(container), RLPositionSizing(container))
    }


def apply_trade_outcome(container: Container, payload: dict[str, Any]) -> dict[str, Any]:
    """Both agents learn from one `execution.trade.closed` payload (each at most once)."""

    outcome = TradeOutcome.from_payload(payload)
    result: dict[str, Any] = {"trade_id": outcome.trade_id}
    for agent in (RLMetaStrategy(container), RLPositionSizing(container)):
        applied = agent.apply_outcome(outcome)
        result[agent.rl_type] = None if applied is None else {"version": applied.version, "q_value": applied.q_value}
    return result
