"""The two agents' reward functions, exactly as the specification writes them."""

from __future__ import annotations

import math


def _finite(name: str, value: float) -> float:
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{name}: {value!r} is not a finite number")
    return number


def meta_strategy_reward(pnl_pct: float, time_in_trade_hours: float, max_drawdown_pct: float, winrate: float) -> float:
    """PnL % + time bonus - drawdown penalty + winrate bonus (specification, rl_meta_strategy).

    +3 % in 2 h with 1 % max drawdown at 70 % winrate: 3.0 + 1.2 - 2.0 + 2.0 = 4.2.
    """
    pnl_pct = _finite("pnl_pct", pnl_pct)
    hours = _finite("time_in_trade_hours", time_in_trade_hours)
    if hours < 0:
        raise ValueError(f"time_in_trade_hours: {time_in_trade_hours!r} is negative")
    time_bonus = (24 / max(hours, 0.1)) * 0.1
    drawdown_penalty = abs(_finite("max_drawdown_pct", max_drawdown_pct)) * 2.0
    winrate_bonus = (_finite("winrate", winrate) - 0.5) * 10.0
    return pnl_pct + time_bonus - drawdown_penalty + winrate_bonus


def position_sizing_reward(pnl_pct: float, time_hours: float, max_dd_pct: float, hit_tp: bool, hit_sl: bool) -> float:
    """PnL % - 0.05 per hour - 3 x |drawdown| + 1 for a take profit - 0.5 for a stop loss."""
    reward = _finite("pnl_pct", pnl_pct)
    hours = _finite("time_hours", time_hours)
    if hours < 0:
        raise ValueError(f"time_hours: {time_hours!r} is negative")
    reward -= hours * 0.05
    reward -= abs(_finite("max_dd_pct", max_dd_pct)) * 3.0
    if hit_tp:
        reward += 1.0  # a clean exit
    if hit_sl:
        reward -= 0.5  # stopped out
    return reward
