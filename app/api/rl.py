"""RL agents: decisions for the trading engine; versions, Q-table sizes, updates, exploration rate; reset."""

from __future__ import annotations

from flask import Blueprint

from app.api.common import container, halt_view
from app.api.errors import ApiError
from app.api.openapi import operation
from app.api.schemas import (
    MetaDecisionOut,
    MetaDecisionRequest,
    RLAgentList,
    RLResetOut,
    RLResetRequest,
    SizingDecisionOut,
    SizingDecisionRequest,
)
from app.operations.read_models import rl_agents
from app.rl.meta_space import MetaStrategyState
from app.rl.meta_strategy import RLMetaStrategy
from app.rl.position_sizing import RLPositionSizing
from app.rl.sizing_space import SizingState

bp = Blueprint("rl", __name__, url_prefix="/api/rl")


@operation(bp, "", summary="Both RL agents: version, states, updates, epsilon", tag="rl", response=RLAgentList)
def get_rl_agents() -> RLAgentList:
    with container().session() as session:
        return RLAgentList.model_validate({"agents": rl_agents(session)})


AGENTS = {"meta_strategy": RLMetaStrategy, "position_sizing": RLPositionSizing}


@operation(
    bp, "/<rl_type>/reset", "POST", summary="Archive an agent's Q-table and start a fresh one", tag="rl",
    body=RLResetRequest, response=RLResetOut, auth=True,
)  # fmt: skip
def post_rl_reset(rl_type: str, body: RLResetRequest) -> RLResetOut:
    agent_class = AGENTS.get(rl_type)
    if agent_class is None:
        raise ApiError(404, f"RL agent {rl_type!r} not found; known: {sorted(AGENTS)}")
    result = agent_class(container()).reset_on_regime_shift(reason=body.reason, force=True)
    assert result is not None  # force=True always resets
    return RLResetOut(
        rl_type=rl_type, old_version=result.old_version, new_version=result.new_version, reason=body.reason
    )


@operation(
    bp, "/meta-strategy/decision", "POST", summary="Meta strategy: which strategy to trade in this market state",
    tag="rl", body=MetaDecisionRequest, response=MetaDecisionOut, auth=True,
)  # fmt: skip
def post_meta_decision(body: MetaDecisionRequest) -> MetaDecisionOut:
    """Recorded with its `decision_id`; report the trade with it in POST /api/outcomes. While
    trading is halted the choice is answered, marked halted, and no outcome may name it."""
    decision = RLMetaStrategy(container()).decide(MetaStrategyState(**body.state.model_dump()))
    return MetaDecisionOut(
        decision_id=decision.decision_id,
        strategy=decision.strategy.value,
        q_values=decision.q_values,
        epsilon=decision.epsilon,
        explored=decision.explored,
        version=decision.version,
        state_key=decision.state_key,
        **halt_view(decision.halt),
    )


@operation(
    bp, "/position-sizing/decision", "POST", summary="Position sizing: size, leverage, TP/SL, clamped to the risk mode",
    tag="rl", body=SizingDecisionRequest, response=SizingDecisionOut, auth=True,
)  # fmt: skip
def post_sizing_decision(body: SizingDecisionRequest) -> SizingDecisionOut:
    """Recorded with its `decision_id`. While trading is halted: size 0, not allowed, the halt as the reason."""
    decision = RLPositionSizing(container()).get_sizing_decision(
        SizingState(**body.state.model_dump()), balance_usd=body.balance_usd, open_positions=body.open_positions
    )
    data = decision.to_dict()
    return SizingDecisionOut.model_validate(
        {k: v for k, v in data.items() if k in SizingDecisionOut.model_fields} | halt_view(decision.halt)
    )
