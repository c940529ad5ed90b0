"""RL agents: versions, Q-table sizes, updates, exploration rate; reset."""

from __future__ import annotations

from flask import Blueprint

from app.api.common import container
from app.api.errors import ApiError
from app.api.openapi import operation
from app.api.schemas import RLAgentList, RLResetOut, RLResetRequest
from app.operations.read_models import rl_agents
from app.rl.meta_strategy import RLMetaStrategy
from app.rl.position_sizing import RLPositionSizing

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
