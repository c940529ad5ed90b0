"""Trading logic of the simulated engine, as pure functions: ensemble, market state, exits, payload.

A trade opens at the close of the candle its predictions were made on and closes at the
first later candle whose high/low reaches its take profit or stop loss (both in one candle:
the stop loss, the cautious reading), else at the close of the candle that ends the label
horizon. PnL is in percent of the margin: the price move times the leverage, after the
round-trip fee.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

# Take profit and stop loss as multiples of the horizon's expected move (ATR% x sqrt(horizon)).
TP_MULTIPLES = {"conservative": 0.5, "balanced": 0.9, "aggressive": 1.4}
SL_MULTIPLES = {"tight": 0.5, "medium": 0.8, "wide": 1.2}
ATR_WINDOW = 14


@dataclass(frozen=True)
class EnsembleSignal:
    direction: int  # 1 long, -1 short, 0 no trade
    confidence: float  # mean confidence of the models that agree with the direction
    predicted_return: float  # confidence-weighted mean of the models' predicted returns
    votes: dict[str, int]  # model type -> its direction


def ensemble(predictions: Mapping[str, Mapping[str, Any]]) -> EnsembleSignal:
    """Confidence-weighted vote of the models' directions; a tie or no conviction is no trade."""
    if not predictions:
        return EnsembleSignal(0, 0.0, 0.0, {})
    votes = {m: int(p["direction"]) for m, p in predictions.items()}
    weights = {m: float(p["confidence"]) for m, p in predictions.items()}
    score = sum(votes[m] * weights[m] for m in votes)
    total = sum(weights.values()) or 1.0
    expected = sum(float(p["predicted_return"]) * weights[m] for m, p in predictions.items()) / total
    direction = int(np.sign(score)) if abs(score) > 1e-12 else 0
    agreeing = [weights[m] for m in votes if votes[m] == direction and direction != 0]
    # A lone model against the rest is not a signal: at least half must agree.
    if direction == 0 or len(agreeing) * 2 < len(votes):
        return EnsembleSignal(0, 0.0, expected, votes)
    return EnsembleSignal(direction, float(np.mean(agreeing)), expected, votes)


@dataclass(frozen=True)
class MarketView:
    """What the agents see of one symbol at the decision time."""

    close: float
    atr_pct: float  # ATR as percent of price
    momentum: float  # log return over the last horizon
    volume_ratio: float  # last volume / median of the last week's


def market_view(candles: pd.DataFrame, horizon: int, week: int) -> MarketView:
    high, low, close = (candles[c].to_numpy(dtype=np.float64) for c in ("high", "low", "close"))
    previous = np.concatenate([[close[0]], close[:-1]])
    true_range = np.maximum(high, previous) - np.minimum(low, previous)
    atr = float(np.mean(true_range[-ATR_WINDOW:]))
    volume = candles["volume"].to_numpy(dtype=np.float64)
    median = float(np.median(volume[-week:])) or 1.0
    back = close[-horizon - 1] if len(close) > horizon else close[0]
    last = float(close[-1])
    return MarketView(last, 100.0 * atr / last, math.log(last / float(back)), float(volume[-1]) / median)


def volatility_level(atr_pct: float) -> str:
    return "LOW" if atr_pct < 0.5 else "MEDIUM" if atr_pct < 1.0 else "HIGH" if atr_pct < 2.0 else "EXTREME"


def liquidity_level(volume_ratio: float) -> str:
    return "LOW" if volume_ratio < 0.7 else "MEDIUM" if volume_ratio < 1.4 else "HIGH"


def performance_level(pnl_last_week_pct: float) -> str:
    """The meta state's recent performance, by the specification's rule: GOOD above +5 %, POOR below -3 %.

    The engine computes its states itself, as an external engine would; a unit test checks that
    this agrees with the agent's own rule (`app.rl.meta_space.performance_level`).
    """
    return "GOOD" if pnl_last_week_pct > 5.0 else "POOR" if pnl_last_week_pct < -3.0 else "NEUTRAL"


def strategy_allows(strategy: str, signal: EnsembleSignal, view: MarketView) -> bool:
    """How each strategy filters the ensemble's signal (the meta agent learns which pays)."""
    if strategy == "breakout":  # only with the recent move
        return signal.direction * view.momentum > 0
    if strategy == "mean_reversion":  # only against the recent move
        return signal.direction * view.momentum < 0
    if strategy == "defensive":  # high confidence only
        return signal.confidence >= 0.6
    return True  # trend_follow, range_bound


def strategy_scale(strategy: str) -> tuple[float, float]:
    """(take-profit scale, stop-loss scale) of a strategy."""
    return {"trend_follow": (1.3, 1.0), "range_bound": (0.7, 0.7), "defensive": (0.8, 0.6)}.get(strategy, (1.0, 1.0))


@dataclass
class Trade:
    trade_id: str
    symbol: str
    side: int
    entry_price: float
    opened_at: datetime
    opened_index: int
    tp_price: float
    sl_price: float
    size_usd: float
    leverage: int
    strategy: str
    meta_state: dict[str, Any]
    sizing_state: dict[str, Any]
    sizing_action: str
    prediction_ids: list[int] = field(default_factory=list)
    shadow_test_ids: list[int] = field(default_factory=list)
    worst_pct: float = 0.0  # worst adverse price move so far, percent


def levels(
    side: int, price: float, atr_pct: float, horizon: int, tp: str, sl: str, strategy: str
) -> tuple[float, float]:
    """(take profit, stop loss) prices."""
    move = atr_pct / 100.0 * math.sqrt(horizon)
    tp_scale, sl_scale = strategy_scale(strategy)
    take = price * (1 + side * TP_MULTIPLES[tp] * tp_scale * move)
    stop = price * (1 - side * SL_MULTIPLES[sl] * sl_scale * move)
    return take, stop


@dataclass(frozen=True)
class Exit:
    price: float
    reason: str  # tp, sl, horizon
    index: int


def check_exit(trade: Trade, high: float, low: float, close: float, index: int, horizon: int) -> Exit | None:
    adverse = (low / trade.entry_price - 1) if trade.side > 0 else (1 - high / trade.entry_price)
    trade.worst_pct = min(trade.worst_pct, 100.0 * adverse)
    hit_sl = low <= trade.sl_price if trade.side > 0 else high >= trade.sl_price
    hit_tp = high >= trade.tp_price if trade.side > 0 else low <= trade.tp_price
    if hit_sl:
        return Exit(trade.sl_price, "sl", index)
    if hit_tp:
        return Exit(trade.tp_price, "tp", index)
    if index - trade.opened_index >= horizon:
        return Exit(close, "horizon", index)
    return None


def trade_pnl_pct(trade: Trade, exit_price: float, fee_pct: float) -> float:
    """PnL in percent of the margin: levered price move after the round-trip fee."""
    move_pct = trade.side * (exit_price / trade.entry_price - 1) * 100.0
    return trade.leverage * (move_pct - 2 * fee_pct)


def closed_payload(
    trade: Trade, exit_: Exit, closed_at: datetime, pnl_pct: float, winrate: float, next_states: Sequence[Any]
) -> dict[str, Any]:
    """The `execution.trade.closed` payload (keys: app/rl/outcome.py; ids for the shadow tester and supervisor)."""
    meta_next, sizing_next = next_states
    payload: dict[str, Any] = {
        "trade_id": trade.trade_id,
        "symbol": trade.symbol,
        "side": "LONG" if trade.side > 0 else "SHORT",
        "opened_at": trade.opened_at.isoformat(),
        "closed_at": closed_at.isoformat(),
        "entry_price": trade.entry_price,
        "exit_price": exit_.price,
        "size_usd": trade.size_usd,
        "leverage": trade.leverage,
        "strategy": trade.strategy,
        "pnl_pct": round(pnl_pct, 6),
        "realized_return": math.log(exit_.price / trade.entry_price),  # the market's, over the trade
        "duration_hours": max(0.0, (closed_at - trade.opened_at).total_seconds() / 3600.0),
        "max_drawdown_pct": round(abs(trade.worst_pct) * trade.leverage, 6),
        "hit_tp": exit_.reason == "tp",
        "hit_sl": exit_.reason == "sl",
        "exit_reason": exit_.reason,
        "winrate": winrate,
        "meta_state": trade.meta_state,
        "meta_action": trade.strategy,
        "sizing_state": trade.sizing_state,
        "sizing_action": trade.sizing_action,
        "prediction_ids": list(trade.prediction_ids),
        "shadow_test_ids": list(trade.shadow_test_ids),
    }
    if meta_next is not None:
        payload["meta_next_state"] = meta_next
    if sizing_next is not None:
        payload["sizing_next_state"] = sizing_next
    return payload
