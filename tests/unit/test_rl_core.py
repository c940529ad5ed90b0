"""Pure RL logic: rewards, spaces and bins, the Q rule, epsilon decay, pruning, snapshot format."""

from __future__ import annotations

import json
import random
from datetime import datetime

import pytest

from app.rl.meta_space import STRATEGY_ACTIONS, MetaStrategyState, StrategyType, performance_level
from app.rl.outcome import TradeOutcome
from app.rl.qlearning import QParams, QTable, decay_epsilon, epsilon_greedy, q_update, td_target
from app.rl.rewards import meta_strategy_reward, position_sizing_reward
from app.rl.sizing_space import SIZING_ACTION_KEYS, SIZING_ACTIONS, SizingAction, SizingState
from app.rl.snapshot import SnapshotFormatError, encode_snapshot, parse_snapshot, snapshot_document

PARAMS = QParams(learning_rate=0.1, discount=0.95, epsilon_decay=0.995, epsilon_min=0.05)


def test_the_specifications_worked_example_gives_4_2() -> None:
    # +3 % PnL in 2 hours, 1 % max drawdown, 70 % winrate -> 3.0 + 1.2 - 2.0 + 2.0
    assert meta_strategy_reward(3.0, 2.0, 1.0, 0.7) == pytest.approx(4.2)
    assert meta_strategy_reward(3.0, 2.0, -1.0, 0.7) == pytest.approx(4.2)  # drawdown sign ignored
    # the time bonus is capped at 0.1 h: 24 / 0.1 * 0.1 = 24
    assert meta_strategy_reward(0.0, 0.0, 0.0, 0.5) == pytest.approx(24.0)


def test_sizing_reward_terms() -> None:
    assert position_sizing_reward(2.0, 4.0, 0.5, hit_tp=True, hit_sl=False) == pytest.approx(2.0 - 0.2 - 1.5 + 1.0)
    assert position_sizing_reward(-1.0, 1.0, 1.0, hit_tp=False, hit_sl=True) == pytest.approx(-1.0 - 0.05 - 3.0 - 0.5)
    with pytest.raises(ValueError, match="time_hours"):
        position_sizing_reward(1.0, -1.0, 0.0, False, False)
    with pytest.raises(ValueError, match="pnl_pct"):
        meta_strategy_reward(float("nan"), 1.0, 0.0, 0.5)


def test_meta_state_key_and_validation() -> None:
    state = MetaStrategyState("trending", "HIGH", "MEDIUM", "good")
    assert state.key == "TRENDING_HIGH_MEDIUM_GOOD"
    assert MetaStrategyState.from_dict(state.to_dict()) == state
    with pytest.raises(ValueError, match=r"meta_state\.volatility_level: 'HUGE'"):
        MetaStrategyState("TRENDING", "HUGE", "LOW", "GOOD")
    with pytest.raises(ValueError, match="missing"):
        MetaStrategyState.from_dict({"market_regime": "TRENDING"})
    assert [performance_level(x) for x in (6, 0, -4)] == ["GOOD", "NEUTRAL", "POOR"]
    assert len(STRATEGY_ACTIONS) == 5 and StrategyType("defensive") is StrategyType.DEFENSIVE


def test_sizing_bins_edges_and_actions() -> None:
    state = SizingState("RANGING", 0.70, 0.0, 0.5, 1.0)
    # a value equal to an edge goes to the upper bin
    assert state.key == "RANGING_conf-HIGH_exp-LOW_wr-ABOVE_vol-MED"
    assert SizingState("VOLATILE", 0.1, 2.0, 0.0, 9.0).key == "VOLATILE_conf-LOW_exp-FULL_wr-POOR_vol-EXTREME"
    assert len(SIZING_ACTIONS) == 270 == len(set(SIZING_ACTION_KEYS))
    action = SizingAction.parse({"size_multiplier": 1, "leverage": 5, "tp_strategy": "balanced", "sl_strategy": "wide"})
    assert action.key == "size-1.0_lev-5_tp-balanced_sl-wide" and SizingAction.from_key(action.key) == action
    with pytest.raises(ValueError, match=r"sizing_state\.signal_confidence: 1\.5"):
        SizingState("TRENDING", 1.5, 0.1, 0.5, 1.0)
    with pytest.raises(ValueError, match="not a sizing action key"):
        SizingAction.parse("size-2.0_lev-5_tp-balanced_sl-wide")


def test_q_update_rule_and_terminal_target() -> None:
    # Q += lr * (r + gamma * max Q(s') - Q)
    assert q_update(1.0, td_target(2.0, {"a": 3.0, "b": -1.0}, 0.9), 0.5) == pytest.approx(1.0 + 0.5 * (4.7 - 1.0))
    assert td_target(2.0, None, 0.9) == 2.0  # the trade ended its episode
    assert td_target(2.0, {}, 0.9) == 2.0
    table = QTable(actions=("a", "b"), params=PARAMS, epsilon=0.5)
    assert table.update("s", "a", 10.0) == pytest.approx(1.0)
    assert table.update("s", "a", 10.0) == pytest.approx(1.9)
    with pytest.raises(ValueError, match="not one of"):
        table.update("s", "c", 1.0)


def test_epsilon_decays_to_its_floor_and_greedy_picks_the_best() -> None:
    epsilon = 0.5
    for _ in range(322):  # 0.5 * 0.995**322 < 0.1
        epsilon = decay_epsilon(epsilon, PARAMS)
    assert epsilon < 0.1
    for _ in range(2000):
        epsilon = decay_epsilon(epsilon, PARAMS)
    assert epsilon == PARAMS.epsilon_min
    rng = random.Random(1)
    assert epsilon_greedy({"a": 1.0, "b": 2.0}, ("a", "b", "c"), 0.0, rng) == ("b", False)
    # unvisited actions are worth 0: better than a negative one
    assert epsilon_greedy({"a": -1.0}, ("a", "c"), 0.0, rng) == ("c", False)
    explored = [epsilon_greedy({"a": 1.0}, ("a", "b"), 1.0, rng)[1] for _ in range(50)]
    assert all(explored)


def test_pruning_removes_only_states_idle_past_the_threshold() -> None:
    table = QTable(actions=("a",), params=PARAMS, epsilon=0.5)
    table.update("old", "a", 1.0)
    for _ in range(10):
        table.update("new", "a", 1.0)
    assert table.prune(threshold=20) == []
    assert table.prune(threshold=5) == ["old"]
    assert set(table.values) == {"new"}


def test_snapshot_format_is_the_specifications() -> None:
    document = snapshot_document(
        version=7,
        created_at=datetime(2025, 12, 2, 10, 0, 0, 123),
        q_table={"TRENDING_HIGH_MEDIUM_GOOD": {"trend_follow": 4.5, "mean_reversion": -1.2}},
        total_updates=12450,
        epsilon=0.05,
        learning_rate=0.1,
    )
    parsed = json.loads(encode_snapshot(document))
    assert parsed == {
        "version": 7,
        "created_at": "2025-12-02T10:00:00",
        "q_table": {"TRENDING_HIGH_MEDIUM_GOOD": {"mean_reversion": -1.2, "trend_follow": 4.5}},
        "metadata": {"total_updates": 12450, "epsilon": 0.05, "learning_rate": 0.1},
    }
    assert parse_snapshot(encode_snapshot(document), "f.json") == parsed
    broken = dict(parsed, q_table={"S": {"a": "x"}})
    with pytest.raises(SnapshotFormatError, match=r"f\.json: q_table\['S'\]\['a'\]"):
        parse_snapshot(json.dumps(broken).encode(), "f.json")
    with pytest.raises(SnapshotFormatError, match=r"metadata\.epsilon"):
        parse_snapshot(json.dumps(dict(parsed, metadata={"total_updates": 1})).encode(), "f.json")


def test_trade_outcome_payload_is_checked_key_by_key() -> None:
    meta = {"market_regime": "TRENDING", "volatility_level": "LOW", "liquidity_level": "HIGH"}
    base = {"trade_id": "t1", "pnl_pct": 1.0, "duration_hours": 2.0}
    assert TradeOutcome.from_payload(base).meta_state is None
    with pytest.raises(ValueError, match=r"execution\.trade\.closed\.meta_state: missing \['recent_performance'\]"):
        TradeOutcome.from_payload(base | {"meta_state": meta, "meta_action": "breakout"})
    with pytest.raises(ValueError, match="'meta_state' and 'meta_action' come together"):
        TradeOutcome.from_payload(base | {"meta_state": meta | {"recent_performance": "GOOD"}})
    with pytest.raises(ValueError, match="'pnl_pct' = 'x'"):
        TradeOutcome.from_payload(base | {"pnl_pct": "x"})
    with pytest.raises(ValueError, match="missing 'trade_id'"):
        TradeOutcome.from_payload({"pnl_pct": 1.0, "duration_hours": 1.0})
    sizing = {"market_regime": "CHOPPY", "signal_confidence": 0.6, "portfolio_exposure": 0.2}
    sizing |= {"recent_winrate": 0.65, "volatility": 1.2}
    outcome = TradeOutcome.from_payload(base | {"sizing_state": sizing, "sizing_action": SIZING_ACTION_KEYS[0]})
    assert outcome.winrate == 0.65  # the meta reward's winrate defaults to the sizing state's
