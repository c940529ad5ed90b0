"""A deterministic synthetic market: Markov regimes, GARCH-like volatility, an optional shift.

Before the shift, a market-wide Markov chain moves between three regimes (trend, range,
volatile). Each symbol's one-candle log return is

    r_t = mu_t + phi * noise_{t-1} + sigma_t * z_t

with a persistent latent drift mu_t (AR(1), so past returns carry information about the
next horizon: models can beat the zero-return baseline), a small autocorrelation phi,
and GARCH(1,1) variance sigma_t^2 scaled by the regime (volatility clusters). z_t mixes a
market factor shared by every symbol with the symbol's own noise.

`shift_at` switches every symbol to a different market from that candle on: a range.
No latent drift; each symbol's log price is pulled back to its level at the shift
(Ornstein-Uhlenbeck, half-life `RANGE_HALF_LIFE_HOURS`), on top of strong one-candle mean
reversion (phi < 0), at 2.5x the volatility and twice the volume. What predicted the next
hours before the shift (recent moves continue) now predicts the wrong side (moves are
reversed): models trained before it lose money, models retrained on the range can learn
it, and the volatility and volume features move far, so drift checks see it.

Same arguments, same candles: every random stream is seeded from (seed, symbol, stream),
so the first k candles of a longer series equal a series of k candles.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from app.data_pipeline.timeframes import ceil_to_grid, timeframe_ms, to_ms

BASE_VOL_5M = 0.002  # one 5-minute candle's return std, of the order of BTC's
MEAN_REGIME_HOURS = 12.0
BASE_STEP_MS = 300_000  # the market is simulated on 5-minute candles
GARCH_ALPHA, GARCH_BETA = 0.08, 0.90
MARKET_FACTOR_SHARE = 0.5
RANGE_HALF_LIFE_HOURS = 6.0  # the shifted market's pull back to its level


@dataclass(frozen=True)
class RegimeParams:
    name: str
    drift_persistence: float  # AR(1) coefficient of the latent drift
    drift_scale: float  # stationary std of the drift, in units of the base volatility
    autocorr: float  # phi: carry-over of the previous candle's noise
    vol_mult: float
    volume_mult: float


REGIMES = (
    RegimeParams("trend", 0.995, 0.25, 0.05, 1.0, 1.0),
    RegimeParams("range", 0.99, 0.08, -0.05, 0.7, 0.8),
    RegimeParams("volatile", 0.99, 0.15, 0.0, 2.0, 1.6),
)
SHIFTED = RegimeParams("shifted", 0.0, 0.0, -0.35, 2.5, 2.0)
# Sticky transitions: stay, or move to one of the others with equal chance.
_N_REGIMES = len(REGIMES)


def _rng(seed: int, key: str, stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(key.encode()), stream])


def _regime_path(seed: int, periods: int, step_ms: int, shift_index: int | None) -> np.ndarray:
    """Regime index per candle (len(REGIMES) marks the shifted market)."""
    leave = min(0.5, step_ms / (MEAN_REGIME_HOURS * 3_600_000))
    draws = _rng(seed, "__market_regimes__", 0).random((periods, 2))
    path = np.empty(periods, dtype=np.int64)
    state = 0
    for t in range(periods):
        if draws[t, 0] < leave:
            state = (state + 1 + int(draws[t, 1] * (_N_REGIMES - 1))) % _N_REGIMES
        path[t] = state
    if shift_index is not None:
        path[shift_index:] = _N_REGIMES
    return path


def _segments(path: np.ndarray) -> list[tuple[int, str]]:
    names = [r.name for r in REGIMES] + [SHIFTED.name]
    starts = np.flatnonzero(np.diff(path, prepend=-1))
    return [(int(i), names[path[i]]) for i in starts]


def _symbol_candles(
    symbol: str, seed: int, timestamps: np.ndarray, path: np.ndarray, market_noise: np.ndarray, step_ms: int
) -> pd.DataFrame:
    periods = len(timestamps)
    base_vol = BASE_VOL_5M * np.sqrt(step_ms / 300_000)
    own = _rng(seed, symbol, 1).standard_normal(periods)
    drift_noise = _rng(seed, symbol, 2).standard_normal(periods)
    wick_noise = np.abs(_rng(seed, symbol, 3).standard_normal((periods, 2)))
    volume_noise = _rng(seed, symbol, 4).standard_normal(periods)
    scale_draw = _rng(seed, symbol, 5).random(2)
    z = np.sqrt(MARKET_FACTOR_SHARE) * market_noise + np.sqrt(1 - MARKET_FACTOR_SHARE) * own

    params = [*REGIMES, SHIFTED]
    rho = np.array([p.drift_persistence for p in params])[path]
    drift_step = (np.sqrt(1 - rho * rho) * np.array([p.drift_scale for p in params])[path]) * base_vol * drift_noise
    # The two recursions (latent drift, GARCH variance) run on plain floats: a Python loop
    # over lists is several times faster than one indexing numpy arrays element by element.
    drift_list, variance_list = [0.0] * periods, [0.0] * periods
    drift, variance = 0.0, 1.0
    omega = 1.0 - GARCH_ALPHA - GARCH_BETA
    for t, (rho_t, step_t, z_t) in enumerate(zip(rho.tolist(), drift_step.tolist(), z.tolist(), strict=True)):
        drift = rho_t * drift + step_t
        drift_list[t] = drift
        variance_list[t] = variance
        variance = omega + (GARCH_ALPHA * z_t * z_t + GARCH_BETA) * variance
    vol_mult = np.array([p.vol_mult for p in params])[path]
    sigmas = base_vol * vol_mult * np.sqrt(np.array(variance_list))
    noise = sigmas * z
    previous_noise = np.concatenate([[0.0], noise[:-1]])
    autocorr = np.array([p.autocorr for p in params])[path]
    returns = np.array(drift_list) + autocorr * previous_noise + noise
    shifted = np.flatnonzero(path == _N_REGIMES)
    if shifted.size:
        returns[shifted] = _range_returns(returns[shifted], step_ms)

    base_price = 10 ** (-1 + 5 * scale_draw[0])
    close = base_price * np.exp(np.cumsum(returns))
    open_ = np.empty(periods)
    open_[0] = base_price
    open_[1:] = close[:-1]
    high = np.maximum(open_, close) * np.exp(0.5 * sigmas * wick_noise[:, 0])
    low = np.minimum(open_, close) * np.exp(-0.5 * sigmas * wick_noise[:, 1])
    volume_mult = np.array([p.volume_mult for p in params])[path]
    base_volume = 10 ** (2 + 4 * scale_draw[1])
    volume = base_volume * volume_mult * np.exp(0.3 * volume_noise) * (0.5 + np.abs(returns) / base_vol)
    return pd.DataFrame(
        {"timestamp": timestamps, "open": open_, "high": high, "low": low, "close": close, "volume": volume}
    )


def _range_returns(shocks: np.ndarray, step_ms: int) -> np.ndarray:
    """The shifted market's returns: the shocks plus a pull of the log price back to where the
    shift found it (Ornstein-Uhlenbeck, half-life `RANGE_HALF_LIFE_HOURS`)."""
    kappa = 1.0 - 0.5 ** (step_ms / (RANGE_HALF_LIFE_HOURS * 3_600_000))
    out = [0.0] * len(shocks)
    deviation = 0.0  # log price minus its level at the shift
    for t, shock in enumerate(shocks.tolist()):
        step = shock - kappa * deviation
        out[t] = step
        deviation += step
    return np.array(out)


def _aggregate(candles: pd.DataFrame, factor: int) -> pd.DataFrame:
    """OHLCV of each run of `factor` consecutive candles (first open, max high, min low, last close, summed volume)."""
    if factor == 1:
        return candles
    groups = np.arange(len(candles)) // factor
    grouped = candles.groupby(groups, sort=False)
    return pd.DataFrame(
        {
            "timestamp": grouped["timestamp"].first().to_numpy(),
            "open": grouped["open"].first().to_numpy(),
            "high": grouped["high"].max().to_numpy(),
            "low": grouped["low"].min().to_numpy(),
            "close": grouped["close"].last().to_numpy(),
            "volume": grouped["volume"].sum().to_numpy(),
        }
    )


def synthetic_market(
    symbols: list[str],
    start: datetime | pd.Timestamp | int,
    periods: int,
    timeframe: str = "5m",
    seed: int = 42,
    shift_at: datetime | pd.Timestamp | int | None = None,
) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    """Candles per symbol on the timeframe grid from `start` (rounded up to the grid).

    `shift_at`: a row index (int < periods) or a time (datetime, or int ms >= start) from
    which the shifted market applies. `info` says where it did (`shift_index`, `shift_at_ms`)
    and lists the regime segments as (first row, regime name).
    """
    if periods < 1:
        raise ValueError(f"synthetic_market: periods must be >= 1, got {periods}")
    if not symbols:
        raise ValueError("synthetic_market: at least one symbol is needed")
    step_ms = timeframe_ms(timeframe)
    start_ms = ceil_to_grid(to_ms(start), timeframe)
    timestamps = start_ms + step_ms * np.arange(periods, dtype=np.int64)
    shift_index: int | None = None
    if shift_at is not None:
        if isinstance(shift_at, (int, np.integer)) and 0 <= int(shift_at) < periods:
            shift_index = int(shift_at)
        else:
            shift_index = int(np.searchsorted(timestamps, to_ms(shift_at)))
        if not 0 < shift_index < periods:
            raise ValueError(f"synthetic_market: shift_at {shift_at!r} is outside the series (rows 1..{periods - 1})")
    # The market's dynamics (drift persistence, GARCH clustering) are defined per 5-minute
    # candle; a longer timeframe is the aggregation of 5-minute candles, so a 1h series has
    # the same market as a 5m one seen hourly (not a market that runs 12x faster).
    factor = step_ms // BASE_STEP_MS if step_ms > BASE_STEP_MS and step_ms % BASE_STEP_MS == 0 else 1
    base_periods = periods * factor
    base_step = step_ms // factor
    base_times = start_ms + base_step * np.arange(base_periods, dtype=np.int64)
    base_shift = None if shift_index is None else shift_index * factor
    path = _regime_path(seed, base_periods, base_step, base_shift)
    market_noise = _rng(seed, "__market_factor__", 0).standard_normal(base_periods)
    candles = {
        s: _aggregate(_symbol_candles(s, seed, base_times, path, market_noise, base_step), factor) for s in symbols
    }
    path = path[::factor]
    info: dict[str, Any] = {
        "source": "synthetic",
        "seed": seed,
        "timeframe": timeframe,
        "start_ms": start_ms,
        "periods": periods,
        "shift_index": shift_index,
        "shift_at_ms": int(timestamps[shift_index]) if shift_index is not None else None,
        "regimes": _segments(path),
    }
    return candles, info
