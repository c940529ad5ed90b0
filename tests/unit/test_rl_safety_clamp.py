"""The safety clamp: no sizing decision exceeds the active risk mode, for any state and Q-table."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete

from app.core.db.models import RLQValue
from app.core.policy import Policy, RiskConfig, RiskMode
from app.rl.meta_space import REGIMES
from app.rl.position_sizing import RLPositionSizing, decide
from app.rl.qlearning import epsilon_greedy
from app.rl.sizing_space import SIZING_ACTION_KEYS, SizingAction, SizingState

unit = st.floats(0.0, 1.0)
states = st.builds(
    SizingState,
    st.sampled_from(REGIMES),
    unit,
    st.floats(0.0, 5.0),
    unit,
    st.floats(0.0, 50.0),
)
q_tables = st.dictionaries(st.sampled_from(SIZING_ACTION_KEYS), st.floats(-1e6, 1e6), max_size=270)
risk_modes = st.builds(
    RiskMode,
    max_risk_pct_per_trade=st.floats(0.0001, 1.0),
    max_leverage=st.integers(1, 125),
    max_positions=st.integers(1, 50),
)


@settings(max_examples=300, deadline=None)
@given(
    state=states,
    q_row=q_tables,
    epsilon=unit,
    mode=risk_modes,
    base=st.floats(1.0, 1e6),
    balance=st.floats(0.0, 1e9),
    open_positions=st.integers(0, 60),
    seed=st.integers(0, 2**32 - 1),
)
def test_no_sizing_decision_exceeds_the_policy(
    state, q_row, epsilon, mode, base, balance, open_positions, seed
) -> None:
    policy = Policy(risk=RiskConfig(active_mode="custom", modes={"custom": mode}, base_position_usd=base))
    key, _ = epsilon_greedy(q_row, SIZING_ACTION_KEYS, epsilon, random.Random(seed))
    decision = decide(
        SizingAction.from_key(key), policy, balance_usd=balance, open_positions=open_positions, state_key=state.key
    )
    assert decision.size_usd <= mode.max_risk_pct_per_trade * balance + 1e-9
    assert 0 <= decision.size_usd <= decision.proposed_size_usd
    assert 1 <= decision.leverage <= mode.max_leverage
    if open_positions >= mode.max_positions:
        assert decision.size_usd == 0 and not decision.allowed
    # the decision says when and why: a changed value always comes with its reason
    changed = decision.size_usd != decision.proposed_size_usd or decision.leverage != decision.proposed_leverage
    assert decision.clamped == changed == bool(decision.clamp_reasons)
    assert decision.risk_mode == "custom" and decision.state_key == state.key


def test_clamp_reasons_name_the_limit() -> None:
    policy = Policy()  # normal mode: 2 % of balance, leverage 5, 5 positions
    action = SizingAction(1.5, 10, "aggressive", "wide")
    decision = decide(action, policy, balance_usd=10_000, open_positions=0)
    assert decision.proposed_size_usd == 1500 and decision.size_usd == pytest.approx(200)
    assert decision.leverage == 5 and decision.clamped
    assert [r.split(":")[0] for r in decision.clamp_reasons] == ["max_risk_pct_per_trade", "max_leverage"]
    full = decide(SizingAction(0.3, 1, "balanced", "medium"), policy, balance_usd=1e6, open_positions=5)
    assert not full.allowed and full.clamp_reasons[0].startswith("max_positions: 5 open")
    free = decide(SizingAction(0.3, 1, "balanced", "medium"), policy, balance_usd=1e6, open_positions=0)
    assert free.size_usd == 300 and not free.clamped and free.clamp_reasons == ()
    with pytest.raises(ValueError, match="balance_usd"):
        decide(action, policy, balance_usd=float("nan"), open_positions=0)
    with pytest.raises(ValueError, match="open_positions"):
        decide(action, policy, balance_usd=1.0, open_positions=-1)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    state=states,
    q_row=q_tables,
    greedy=st.booleans(),
    mode=risk_modes,
    balance=st.floats(0.0, 1e7),
    open_positions=st.integers(0, 60),
)
def test_the_service_never_exceeds_the_active_mode(
    sqlite_container, state, q_row, greedy, mode, balance, open_positions
) -> None:
    """Through the database-backed agent: any Q-table written into the live table, any mode."""
    sqlite_container.policy_store.update({"risk": {"active_mode": "custom", "modes": {"custom": mode.model_dump()}}})
    agent = RLPositionSizing(sqlite_container, rng=random.Random(0))
    with sqlite_container.session() as session:
        live = agent.store.lock_agent(session, 0.5)
        live.epsilon = 0.0 if greedy else 1.0
        session.execute(delete(RLQValue).where(RLQValue.rl_type == agent.rl_type))
        session.add_all(
            RLQValue(rl_type=agent.rl_type, version=live.version, state_key=state.key, action=a, q_value=v, visits=1)
            for a, v in q_row.items()
        )
    decision = agent.get_sizing_decision(state, balance_usd=balance, open_positions=open_positions)
    assert decision.size_usd <= mode.max_risk_pct_per_trade * balance + 1e-9
    assert 1 <= decision.leverage <= mode.max_leverage
    assert decision.allowed == (decision.size_usd > 0)
    if open_positions >= mode.max_positions:
        assert not decision.allowed
    if greedy and q_row and max(q_row.values()) > 0:
        assert q_row[decision.action_key] == max(q_row.values())  # the table was read
