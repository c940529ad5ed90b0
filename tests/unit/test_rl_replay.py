"""Replays: trades simulated on the real candles in tests/data/ohlcv go through both agents;
on a synthetic market where one action is truly best, the learned policy beats a random one.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from app.rl.maintenance import apply_trade_outcome
from app.rl.meta_space import STRATEGY_ACTIONS, MetaStrategyState, StrategyType, performance_level
from app.rl.meta_strategy import RLMetaStrategy
from app.rl.position_sizing import RLPositionSizing
from app.rl.sizing_space import SIZING_ACTION_KEYS, SizingAction, SizingState

SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "ADAUSDT")
TP_ATR = {"conservative": 1.0, "balanced": 2.0, "aggressive": 3.0}  # take profit, in ATRs
SL_ATR = {"tight": 0.75, "medium": 1.5, "wide": 2.5}  # stop loss, in ATRs
MAX_HOLD = 24  # candles (hours)
STEP = 6  # a new trade every 6 candles per symbol


def market_features(path: Path) -> pd.DataFrame:
    """Per candle: ATR %, efficiency ratio regime, volatility and liquidity levels, 12 h momentum."""
    df = pd.read_csv(path)
    prev_close = df["close"].shift()
    true_range = pd.concat(
        [df["high"] - df["low"], (df["high"] - prev_close).abs(), (df["low"] - prev_close).abs()], axis=1
    ).max(axis=1)
    df["atr_pct"] = true_range.rolling(14).mean() / df["close"] * 100
    change = (df["close"] - df["close"].shift(48)).abs()
    path_length = df["close"].diff().abs().rolling(48).sum()
    efficiency = change / path_length
    vol_rank = df["atr_pct"].rolling(500, min_periods=100).rank(pct=True)
    df["regime"] = np.select(
        [vol_rank > 0.9, efficiency > 0.3, efficiency < 0.1], ["VOLATILE", "TRENDING", "CHOPPY"], "RANGING"
    )
    df["volatility_level"] = pd.cut(vol_rank, [-1, 0.25, 0.6, 0.9, 2], labels=["LOW", "MEDIUM", "HIGH", "EXTREME"])
    volume_ratio = df["volume"] / df["volume"].rolling(48).median()
    df["liquidity_level"] = pd.cut(volume_ratio, [-1, 0.7, 1.3, np.inf], labels=["LOW", "MEDIUM", "HIGH"])
    df["momentum_pct"] = (df["close"] / df["close"].shift(12) - 1) * 100
    return df.dropna().reset_index(drop=True)


@dataclass
class SimulatedTrade:
    pnl_pct: float
    max_drawdown_pct: float
    duration_hours: float
    hit_tp: bool
    hit_sl: bool
    exit_index: int


def simulate(df: pd.DataFrame, i: int, direction: int, action: SizingAction) -> SimulatedTrade:
    """Enter at candle i's close; exit at TP, SL (checked first: the cautious reading) or after MAX_HOLD."""
    entry, atr = df["close"].iat[i], df["atr_pct"].iat[i] / 100 * df["close"].iat[i]
    take, stop = TP_ATR[action.tp_strategy] * atr, SL_ATR[action.sl_strategy] * atr
    scale = action.leverage * action.size_multiplier * 100 / entry
    worst, end = 0.0, min(i + MAX_HOLD, len(df) - 1)
    for j in range(i + 1, end + 1):
        adverse = (entry - df["low"].iat[j]) if direction > 0 else (df["high"].iat[j] - entry)
        favourable = (df["high"].iat[j] - entry) if direction > 0 else (entry - df["low"].iat[j])
        worst = max(worst, min(adverse, stop))
        if adverse >= stop:
            return SimulatedTrade(-stop * scale, worst * scale, j - i, False, True, j)
        if favourable >= take:
            return SimulatedTrade(take * scale, worst * scale, j - i, True, False, j)
    move = direction * (df["close"].iat[end] - entry)
    return SimulatedTrade(move * scale, worst * scale, end - i, False, False, end)


def test_replay_of_trades_on_real_candles_through_both_agents(sqlite_container, data_dir) -> None:
    meta = RLMetaStrategy(sqlite_container, rng=random.Random(7))
    sizing = RLPositionSizing(sqlite_container, rng=random.Random(8))
    frames = {s: market_features(data_dir / f"binance_{s}_1h.csv") for s in SYMBOLS}
    history: list[float] = []  # account PnL of closed trades, in order
    exits: list[int] = []
    trades = 0
    for i in range(0, 110 * STEP, STEP):
        for symbol, df in frames.items():
            row = df.iloc[i]
            winrate = float(np.mean([p > 0 for p in history[-20:]])) if history else 0.5
            exposure = sum(e > i for e in exits[-4:]) / 4  # share of the last four positions still open
            meta_state = MetaStrategyState(
                row["regime"], row["volatility_level"], row["liquidity_level"], performance_level(sum(history[-28:]))
            )
            sizing_state = SizingState(
                row["regime"],
                min(1.0, abs(row["momentum_pct"]) / (2 * row["atr_pct"])),
                exposure,
                winrate,
                row["atr_pct"],
            )
            strategy = meta.select_strategy(meta_state)
            decision = sizing.get_sizing_decision(sizing_state, balance_usd=100_000, open_positions=0)
            momentum = 1 if row["momentum_pct"] >= 0 else -1
            follow = strategy in (StrategyType.TREND_FOLLOW, StrategyType.BREAKOUT, StrategyType.DEFENSIVE)
            trade = simulate(df, i, momentum if follow else -momentum, decision.action)
            history.append(trade.pnl_pct)
            exits.append(trade.exit_index)
            # the task's code path (tasks.rl.apply_trade_outcome); the event path is in test_rl_agents
            apply_trade_outcome(
                sqlite_container,
                {
                    "trade_id": f"{symbol}-{i}",
                    "pnl_pct": trade.pnl_pct,
                    "duration_hours": trade.duration_hours,
                    "max_drawdown_pct": trade.max_drawdown_pct,
                    "hit_tp": trade.hit_tp,
                    "hit_sl": trade.hit_sl,
                    "meta_state": meta_state.to_dict(),
                    "meta_action": strategy.value,
                    "sizing_state": sizing_state.to_dict(),
                    "sizing_action": decision.action_key,
                },
            )
            trades += 1
    meta_status, sizing_status = meta.status(), sizing.status()
    assert meta_status["total_updates"] == sizing_status["total_updates"] == trades == 440
    assert meta_status["epsilon"] < 0.1 and sizing_status["epsilon"] < 0.1
    assert meta_status["states"] > 40, meta_status  # of 144 possible
    assert sizing_status["states"] > 100, sizing_status  # of 1280 possible
    assert meta_status["visits"] == sizing_status["visits"] == trades


def _best_strategy(regime: str) -> str:
    return {"TRENDING": "trend_follow", "RANGING": "mean_reversion", "CHOPPY": "defensive", "VOLATILE": "breakout"}[
        regime
    ]


def test_learned_meta_policy_beats_random_where_one_strategy_is_truly_best(sqlite_container) -> None:
    sqlite_container.policy_store.update({"rl": {"learning_rate": 0.2}})
    meta = RLMetaStrategy(sqlite_container, rng=random.Random(11))
    market = random.Random(12)
    states = [
        MetaStrategyState(r, "MEDIUM", "MEDIUM", "NEUTRAL") for r in ("TRENDING", "RANGING", "CHOPPY", "VOLATILE")
    ]

    def reward(state: MetaStrategyState, action: str) -> float:
        mean = 2.0 if action == _best_strategy(state.market_regime) else -1.0
        return market.gauss(mean, 1.0)

    for t in range(300):
        state = market.choice(states)
        action = meta.select_strategy(state).value
        meta.update_q_table(state, action, reward(state, action), trade_id=f"syn-{t}")
    table = meta.q_table()
    learned = {s.key: max(table[s.key], key=table[s.key].__getitem__) for s in states}
    assert learned == {s.key: _best_strategy(s.market_regime) for s in states}
    evaluation = [market.choice(states) for _ in range(2000)]
    learned_mean = np.mean([reward(s, learned[s.key]) for s in evaluation])
    random_mean = np.mean([reward(s, market.choice(STRATEGY_ACTIONS)) for s in evaluation])
    assert learned_mean > random_mean + 2.0, (learned_mean, random_mean)


def test_learned_sizing_policy_beats_random_where_one_action_is_truly_best(sqlite_container) -> None:
    sqlite_container.policy_store.update({"rl": {"learning_rate": 0.3}})
    sizing = RLPositionSizing(sqlite_container, rng=random.Random(21))
    market = random.Random(22)
    state = SizingState("TRENDING", 0.8, 0.2, 0.6, 1.0)
    best = SizingAction(0.7, 3, "balanced", "medium").key

    def reward(action: str) -> float:
        return market.gauss(3.0 if action == best else -0.5, 1.0)

    for t in range(420):
        decision = sizing.get_sizing_decision(state, balance_usd=1e6)
        sizing.update_q_table(state, decision.action, reward(decision.action_key), trade_id=f"syn-{t}")
    row = sizing.q_table()[state.key]
    greedy = max(row, key=row.__getitem__)
    assert greedy == best, sorted(row.items(), key=lambda kv: -kv[1])[:3]
    learned_mean = np.mean([reward(greedy) for _ in range(1000)])
    random_mean = np.mean([reward(market.choice(SIZING_ACTION_KEYS)) for _ in range(1000)])
    assert learned_mean > random_mean + 2.0
    assert sizing.status()["epsilon"] < 0.1


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_market_features_cover_every_regime(data_dir, symbol) -> None:
    df = market_features(data_dir / f"binance_{symbol}_1h.csv")
    assert set(df["regime"].iloc[: 110 * STEP]) >= {"TRENDING", "RANGING", "CHOPPY"}
