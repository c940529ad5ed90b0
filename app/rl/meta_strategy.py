"""Meta strategy agent: which strategy to trade in this market (specification: rl_meta_strategy).

State (regime, volatility, liquidity, recent performance) -> one of five strategies,
learned by tabular Q-learning from closed trades with the specification's reward
`pnl_pct + time_bonus - drawdown_penalty + winrate_bonus`. Tables live in the database
(`app.rl.store`); snapshots are JSON files `rl/meta_strategy/rl_meta_strategy_v<N>.json`.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from app.core.topics import RLMetaReset, RLMetaStrategySelected, RLMetaUpdated, TradeClosed
from app.rl.agent import TabularAgent
from app.rl.meta_space import STRATEGY_ACTIONS, MetaStrategyState, StrategyType, parse_strategy
from app.rl.outcome import TradeOutcome, carries
from app.rl.rewards import meta_strategy_reward
from app.rl.store import AppliedUpdate

if TYPE_CHECKING:
    from app.core.container import Container

RL_TYPE = "meta_strategy"


class RLMetaStrategy(TabularAgent):
    rl_type = RL_TYPE
    updated_event = RLMetaUpdated
    reset_event = RLMetaReset
    file_prefix = "rl_meta_strategy"
    actions = STRATEGY_ACTIONS

    def select_strategy(self, state: MetaStrategyState) -> StrategyType:
        """Epsilon-greedy choice; publishes `rl.meta.strategy_selected`."""
        with self._selecting(state.key) as (session, choice, _policy):
            self.container.bus.publish(
                session,
                RLMetaStrategySelected(
                    state=state.to_dict(),
                    state_key=choice.state_key,
                    strategy=choice.action,
                    q_value=choice.q_value,
                    explored=choice.explored,
                    epsilon=choice.epsilon,
                    version=choice.version,
                ),
            )
        return StrategyType(choice.action)

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
