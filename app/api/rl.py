"""RL agents: versions, Q-table sizes, updates, exploration rate."""

from __future__ import annotations

from flask import Blueprint

from app.api.common import container
from app.api.openapi import operation
from app.api.queries import rl_agents
from app.api.schemas import RLAgentList

bp = Blueprint("rl", __name__, url_prefix="/api/rl")


@operation(bp, "", summary="Both RL agents: version, states, updates, epsilon", tag="rl", response=RLAgentList)
def get_rl_agents() -> RLAgentList:
    with container().session() as session:
        return RLAgentList.model_validate({"agents": rl_agents(session)})
