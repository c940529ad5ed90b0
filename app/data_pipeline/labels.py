"""Labels: future return over the horizon, direction with a fee-sized dead zone, market regime.

- `future_return`: log(close[t + horizon] / close[t]); rows whose horizon reaches past the
  data end are dropped (never filled).
- `direction`: the net-of-fee class (`net_of_fee_class`): 1 when `future_return` > dead
  zone, -1 when < -dead zone, else 0 (no trade); the dead zone is the round-trip fee
  (2 x `fee_pct` percent): a move that does not pay for its fees is "flat". With
  `training.target: net_of_fee_class` the tree models learn this class instead of the return.
- `market_relative_return` (not stored: computed from a frame's rows): a symbol's label minus
  the mean label of every symbol at the same timestamp (`training.target: market_relative`).
- `regime`: the regime of the `regime_window` candles ending at t (known at t, so the RL
  agents and the regime detector may use it as state without leakage):
  VOLATILE when the window's volatility exceeds VOLATILE_RATIO x the volatility of the
  window four times longer; otherwise TRENDING when Kaufman's efficiency ratio (net move /
  path length) is at least TRENDING_EFFICIENCY; otherwise CHOPPY when volatility is above
  that longer-run level, RANGING when below. Rows before the longer window is full are dropped.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import talib

from app.core.policy import LabelConfig
from app.forecasters.targets import market_relative_return, net_of_fee_class

REGIMES = ("TRENDING", "RANGING", "CHOPPY", "VOLATILE")
VOLATILE_RATIO = 1.5
TRENDING_EFFICIENCY = 0.25
LONG_WINDOW_FACTOR = 4
LABEL_COLUMNS = ("future_return", "direction", "regime")
__all__ = [
    "LABEL_COLUMNS",
    "REGIMES",
    "dead_zone",
    "generate_labels",
    "label_warmup_rows",
    "market_relative_return",
    "net_of_fee_class",
    "regime_of",
]


def dead_zone(config: LabelConfig) -> float:
    """The flat band of `direction`, as a log return: the round-trip fee."""
    return float(np.log1p(2.0 * config.fee_pct / 100.0))


def regime_of(close: np.ndarray, window: int) -> np.ndarray:
    """Regime name per row (object array); None where the trailing windows are not yet full."""
    if len(close) == 0:
        return np.empty(0, dtype=object)
    log_close = np.log(close.astype(np.float64))
    step = np.empty_like(log_close)
    step[0] = np.nan
    step[1:] = np.diff(log_close)
    long_window = LONG_WINDOW_FACTOR * window
    with np.errstate(all="ignore"):
        vol = talib.STDDEV(step, window, 1.0)
        long_vol = talib.STDDEV(step, long_window, 1.0)
        path = talib.SUM(np.abs(step), window)
        net = np.full_like(log_close, np.nan)
        net[window:] = np.abs(log_close[window:] - log_close[:-window])
        efficiency = np.where(path > 0, net / path, 0.0)
    labels = np.where(
        vol > VOLATILE_RATIO * long_vol,
        "VOLATILE",
        np.where(efficiency >= TRENDING_EFFICIENCY, "TRENDING", np.where(vol > long_vol, "CHOPPY", "RANGING")),
    ).astype(object)
    labels[:long_window] = None  # the long window (on returns) needs long_window + 1 candles
    return labels


def label_warmup_rows(config: LabelConfig) -> int:
    return LONG_WINDOW_FACTOR * config.regime_window


def generate_labels(
    df: pd.DataFrame, config: LabelConfig | None = None, close: pd.Series | None = None
) -> pd.DataFrame:
    """A copy of `df` with the label columns, minus rows without a complete label.

    Prices come from `df["close"]`, or from `close` (aligned on the index) when `df` is a
    feature frame without prices. The rows must be one symbol's candles in time order.
    """
    config = config or LabelConfig()
    if close is None:
        if "close" not in df.columns:
            raise ValueError("generate_labels: df has no 'close' column; pass the candles' close as `close=`")
        prices = df["close"].to_numpy(dtype=np.float64)
    else:
        prices = close.reindex(df.index).to_numpy(dtype=np.float64)
        if np.isnan(prices).any():
            raise ValueError("generate_labels: `close` does not cover every row of df (index mismatch)")
    if (prices <= 0).any():
        raise ValueError("generate_labels: close prices must be > 0")
    horizon = config.horizon
    log_close = np.log(prices)
    future = np.full_like(log_close, np.nan)
    future[:-horizon] = log_close[horizon:] - log_close[:-horizon]
    direction = net_of_fee_class(future, config.fee_pct)
    out = df.copy()
    out["future_return"] = future
    out["direction"] = direction
    out["regime"] = regime_of(prices, config.regime_window)
    keep = np.isfinite(future) & pd.notna(out["regime"]).to_numpy()
    return out.loc[keep]
