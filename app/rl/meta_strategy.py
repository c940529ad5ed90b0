"""Meta strategy agent: which strategy to trade in this market (specification: rl_meta_strategy).

State (regime, volatility, liquidity, recent performance) -> one of five strategies,
learned by tabular Q-learning from closed trades with the specification's reward
`pnl_pct + time_bonus - drawdown_penalty + winrate_bonus`. Tables live in the database
(`app.rl.store`); snapshots are JSON files `rl/meta_strategy/rl_meta_strategy_v<N>.json`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from app.core.system import TradingHalt
from app.core.topics import RLMetaReset, RLMetaStrategySelected, RLMetaUpdated, TradeClosed
from app.rl.agent import TabularAgent
from app.rl.decisions import new_decision_id, record_decision
from app.rl.meta_space import STRATEGY_ACTIONS, MetaStrategyState, StrategyType, parse_strategy
from app.rl.outcome import TradeOutcome, carries
from app.rl.rewards import meta_strategy_reward
from app.rl.store import AppliedUpdate

if TYPE_CHECKING:
    from app.core.container import Container

RL_TYPE = "meta_strategy"


@dataclass(frozen=True)
class MetaDecision:
    """A recorded choice: what an outcome naming `decision_id` will teach the agent."""

    decision_id: str
    state: MetaStrategyState
    state_key: str
    strategy: StrategyType
    q_values: dict[str, float]  # every strategy's Q in this state, as chosen from
    epsilon: float
    explored: bool
    version: int
    halt: TradingHalt | None  # set: trading is halted, the choice is not to be traded


class RLMetaStrategy(TabularAgent):
    rl_type = RL_TYPE
    updated_event = RLMetaUpdated
    reset_event = RLMetaReset
    file_prefix = "rl_meta_strategy"
    actions = STRATEGY_ACTIONS

    def select_strategy(self, state: MetaStrategyState) -> StrategyType:
        """Epsilon-greedy choice; publishes `rl.meta.strategy_selected`."""
        return self.decide(state).strategy

    def decide(self, state: MetaStrategyState) -> MetaDecision:
        """Choose, record the decision (`rl_decisions`) and publish `rl.meta.strategy_selected`, in one transaction."""
        with self._selecting(state.key) as (session, choice, _policy, halt):
            decision = MetaDecision(
                decision_id=new_decision_id(self.rl_type),
                state=state,
                state_key=choice.state_key,
                strategy=StrategyType(choice.action),
                q_values={a: float(choice.q_values.get(a, 0.0)) for a in self.actions},
                epsilon=choice.epsilon,
                explored=choice.explored,
                version=choice.version,
                halt=halt,
            )
            event = RLMetaStrategySelected(
                state=state.to_dict(),
                state_key=choice.state_key,
                strategy=choice.action,
                q_value=choice.q_value,
                explored=choice.explored,
                epsilon=choice.epsilon,
                version=choice.version,
                decision_id=decision.decision_id,
                halted=halt is not None,
            )
            record_decision(
                session,
                self.container.bus,
                event,
                decision_id=decision.decision_id,
                rl_type=self.rl_type,
                version=choice.version,
                state=state.to_dict(),
                state_key=choice.state_key,
                action=choice.action,
                halted=halt is not None,
                allowed=halt is None,
                detail={"q_values": decision.q_values, "epsilon": choice.epsilon, "explored": choice.explored},
            )
        return decision

    def update_q_table(
        self,
        state: MetaStrategyState,
        action: StrategyType | str,
        reward: float,
        next_state: MetaStrategyState | None = None,
        trade_id: str | None = None,
    ) -> AppliedUpdate | None:
        """Q(s,a) += lr * (r + gamma * max Q(s',a') - Q(s,a)); once per `trade_id`.

        Without `next_state` the trade ends its episode (target = reward). Without
        `trade_id` the update cannot be recognised when repeated: pass one.
        """
        strategy = parse_strategy(action)
        return self._update(
            trade_id=trade_id or f"anonymous-{uuid.uuid4().hex}",
            state_key=state.key,
            action=strategy.value,
            reward=float(reward),
            next_state_key=next_state.key if next_state is not None else None,
            event={"state": state.to_dict()},
        )

    def apply_outcome(self, outcome: TradeOutcome) -> AppliedUpdate | None:
        """Learn from a closed trade; None when it has no meta state or was applied already."""
        if outcome.meta_state is None or outcome.meta_action is None:
            return None
        reward = meta_strategy_reward(
            outcome.pnl_pct, outcome.duration_hours, outcome.max_drawdown_pct, outcome.winrate
        )
        return self.update_q_table(
            outcome.meta_state, outcome.meta_action, reward, outcome.meta_next_state, trade_id=outcome.trade_id
        )


def on_trade_closed(container: Container, event: dict[str, Any]) -> None:
    """Handler of `execution.trade.closed` (payload keys: `app.rl.outcome`)."""
    trade = TradeClosed.from_event(event).payload()
    if carries(trade, "meta"):
        RLMetaStrategy(container).apply_outcome(TradeOutcome.from_payload(trade))
