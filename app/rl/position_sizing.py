"""Position sizing agent: how big, how levered, which TP/SL (specification: rl_position_sizing).

State (regime, signal confidence, portfolio exposure, recent winrate, ATR volatility; the
continuous values binned as `app.rl.sizing_space` documents) -> one of 270 actions (size
multiplier x leverage x TP strategy x SL strategy). Every decision passes the safety clamp
of the policy's active risk mode (`app.rl.clamp`) and says when and why it was clamped.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from app.core.policy import Policy
from app.core.topics import RLSizingDecision, RLSizingReset, RLSizingUpdated, TradeClosed
from app.rl.agent import TabularAgent
from app.rl.clamp import RiskLimits, SizingDecision, clamp_sizing, halted_decision
from app.rl.decisions import new_decision_id, record_decision
from app.rl.outcome import TradeOutcome, carries
from app.rl.rewards import position_sizing_reward
from app.rl.sizing_space import SIZING_ACTION_KEYS, SizingAction, SizingState
from app.rl.store import AppliedUpdate

if TYPE_CHECKING:
    from app.core.container import Container

RL_TYPE = "position_sizing"


def risk_limits(policy: Policy) -> RiskLimits:
    mode = policy.risk.active_mode
    limits = policy.risk.modes[mode]
    return RiskLimits(mode, limits.max_risk_pct_per_trade, limits.max_leverage, limits.max_positions)


def decide(
    action: SizingAction, policy: Policy, *, balance_usd: float, open_positions: int, **context: Any
) -> SizingDecision:
    """The clamped decision for `action` under the policy's active risk mode."""
    decision = clamp_sizing(
        action,
        base_position_usd=policy.risk.base_position_usd,
        balance_usd=balance_usd,
        open_positions=open_positions,
        limits=risk_limits(policy),
    )
    return SizingDecision(**{**decision.__dict__, **context})


class RLPositionSizing(TabularAgent):
    rl_type = RL_TYPE
    updated_event = RLSizingUpdated
    reset_event = RLSizingReset
    file_prefix = "rl_position_sizing"
    actions = SIZING_ACTION_KEYS

    def get_sizing_decision(self, state: SizingState, *, balance_usd: float, open_positions: int = 0) -> SizingDecision:
        """Choose an action, clamp it to the active risk mode (and to nothing while trading is
        halted); records the decision (`rl_decisions`) and publishes `rl.sizing.decision`."""
        with self._selecting(state.key) as (session, choice, policy, halt):
            decision = decide(
                SizingAction.from_key(choice.action),
                policy,
                balance_usd=balance_usd,
                open_positions=open_positions,
                state_key=choice.state_key,
                version=choice.version,
                q_value=choice.q_value,
                explored=choice.explored,
                epsilon=choice.epsilon,
                decision_id=new_decision_id(self.rl_type),
            )
            if halt is not None:
                decision = halted_decision(decision, halt)
            record_decision(
                session,
                self.container.bus,
                RLSizingDecision(state=state.to_dict(), **decision.to_dict()),
                decision_id=decision.decision_id,
                rl_type=self.rl_type,
                version=choice.version,
                state=state.to_dict(),
                state_key=choice.state_key,
                action=choice.action,
                halted=decision.halted,
                allowed=decision.allowed,
                detail=decision.to_dict(),
            )
        return decision

    def update_q_table(
        self,
        state: SizingState,
        action: SizingAction | str,
        reward: float,
        next_state: SizingState | None = None,
        trade_id: str | None = None,
    ) -> AppliedUpdate | None:
        """As `RLMetaStrategy.update_q_table`, for a sizing action (or its key)."""
        sizing_action = SizingAction.parse(action)
        return self._update(
            trade_id=trade_id or f"anonymous-{uuid.uuid4().hex}",
            state_key=state.key,
            action=sizing_action.key,
            reward=float(reward),
            next_state_key=next_state.key if next_state is not None else None,
            event={"state": state.to_dict()},
        )

    def apply_outcome(self, outcome: TradeOutcome) -> AppliedUpdate | None:
        """Learn from a closed trade; None when it has no sizing state or was applied already."""
        if outcome.sizing_state is None or outcome.sizing_action is None:
            return None
        reward = position_sizing_reward(
            outcome.pnl_pct, outcome.duration_hours, outcome.max_drawdown_pct, outcome.hit_tp, outcome.hit_sl
        )
        return self.update_q_table(
            outcome.sizing_state, outcome.sizing_action, reward, outcome.sizing_next_state, trade_id=outcome.trade_id
        )


def on_trade_closed(container: Container, event: dict[str, Any]) -> None:
    """Handler of `execution.trade.closed` (payload keys: `app.rl.outcome`)."""
    trade = TradeClosed.from_event(event).payload()
    if carries(trade, "sizing"):
        RLPositionSizing(container).apply_outcome(TradeOutcome.from_payload(trade))
