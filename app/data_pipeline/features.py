"""FeatureEngineer: 60+ scale-free features per symbol, TA-Lib computing what it has.

Every feature is a ratio, a return, an oscillator or a normalised quantity, so that one
model generalises across symbols whose prices differ by orders of magnitude.

No look-ahead: every value at row t is computed from rows <= t only (TA-Lib and the
trailing windows below all run forward in time), so the features of the first k rows
equal the first k rows of the full computation. Warm-up rows are dropped explicitly:
`warmup_rows(config)` is twice the longest lookback, fixed by the configuration and never
by the data. After the warm-up, values that are not finite because a window had zero
range or zero volume (real exchanges print such candles) become 0, by that rule only.

The computation is plain numpy on contiguous float64 arrays; the output block is float32
(half the memory at 50 symbols x 180 days; far finer than any indicator's own noise).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from functools import lru_cache
from itertools import pairwise

import numpy as np
import pandas as pd
import talib

from app.policy import FeatureConfig

# Bump when a formula changes: it is part of the feature-set id stored with datasets and models.
FEATURE_CODE_VERSION = 1

# Fixed indicator parameters (their usual textbook values); part of FEATURE_CODE_VERSION.
MACD_FAST, MACD_SLOW, MACD_SIGNAL = 12, 26, 9
STOCH_K, STOCH_SLOW = 14, 3
STOCHRSI_PERIOD, STOCHRSI_K, STOCHRSI_D = 14, 5, 3
CCI_PERIOD = 20
MFI_PERIOD = 14
WILLR_PERIOD = 14
ROC_PERIODS = (10, 20)
CMO_PERIOD = 14
TRIX_PERIOD = 15
KAMA_PERIOD = 30
TEMA_PERIOD = 20
AROON_PERIOD = 25
LINREG_PERIOD = 14
ADOSC_FAST, ADOSC_SLOW = 3, 10
ULTOSC_PERIODS = (7, 14, 28)
AUTOCORR_WINDOW = 48
EXTREMES_WINDOW = 48

CANDLE_COLUMNS = ("timestamp", "open", "high", "low", "close", "volume")
_MS_PER_DAY = 86_400_000
_TWO_PI = 2.0 * np.pi

Feature = tuple[str, np.ndarray]
_SMA = talib.MA_Type.SMA


def _lag(values: np.ndarray, periods: int) -> np.ndarray:
    """values shifted forward by `periods` rows (row t holds row t - periods), NaN-padded."""
    out = np.empty_like(values)
    out[:periods] = np.nan
    out[periods:] = values[:-periods]
    return out


def _diff(values: np.ndarray, periods: int) -> np.ndarray:
    """values[t] - values[t - periods], NaN for the first `periods` rows (one pass)."""
    out = np.empty_like(values)
    out[:periods] = np.nan
    np.subtract(values[periods:], values[:-periods], out=out[periods:])
    return out


def _rel(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator - 1, computed in place (a relative distance)."""
    out = np.divide(numerator, denominator)
    out -= 1.0
    return out


# sin/cos of the minute of the day and of the weekday, looked up rather than computed per row
_DAY_ANGLES = _TWO_PI * np.arange(1440) / 1440.0
_WEEK_ANGLES = _TWO_PI * np.arange(7) / 7.0
_SIN_DAY, _COS_DAY = np.sin(_DAY_ANGLES), np.cos(_DAY_ANGLES)
_SIN_WEEK, _COS_WEEK = np.sin(_WEEK_ANGLES), np.cos(_WEEK_ANGLES)


def _volume_mean(volume: np.ndarray, window: int) -> np.ndarray:
    """Rolling mean volume; NaN over windows of only zero-volume candles (exchange outages).

    TA-Lib's running sum leaves a round-off residue (~1e-13) after such a window instead
    of an exact zero, and dividing by that residue would make absurd ratios.
    """
    mean = talib.SMA(volume, window)
    mean[talib.MAX(volume, window) == 0] = np.nan
    return mean


def _compute(
    timestamp: np.ndarray,
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
    config: FeatureConfig,
) -> Iterator[Feature]:
    """Yield (name, values) for every feature; the single source of the feature list."""
    log_close = np.log(close)
    ret_1 = _diff(log_close, 1)

    # Returns over several horizons (log, so they add up and are scale-free).
    for horizon in config.return_horizons:
        yield f"ret_{horizon}", _diff(log_close, horizon)

    # Realised volatility: rolling std of one-candle log returns, and Parkinson's range estimator.
    rvol = {w: talib.STDDEV(ret_1, w, 1.0) for w in config.volatility_windows}
    for window, values in rvol.items():
        yield f"rvol_{window}", values
    windows = sorted(config.volatility_windows)
    if len(windows) >= 2:
        yield f"rvol_ratio_{windows[0]}_{windows[-1]}", rvol[windows[0]] / rvol[windows[-1]]
    log_range_sq = np.divide(high, low)
    np.log(log_range_sq, out=log_range_sq)
    np.square(log_range_sq, out=log_range_sq)
    for window in config.volatility_windows:
        yield f"parkinson_{window}", np.sqrt(talib.SMA(log_range_sq, window) / (4.0 * np.log(2.0)))
    yield "natr", talib.NATR(high, low, close, config.atr_period)
    yield "range_pct", (high - low) / close
    yield "ret_autocorr", talib.CORREL(ret_1, _lag(ret_1, 1), AUTOCORR_WINDOW)

    # Momentum oscillators (already bounded, scale-free).
    for period in config.rsi_periods:
        yield f"rsi_{period}", talib.RSI(close, period)
    macd, signal, hist = talib.MACD(close, MACD_FAST, MACD_SLOW, MACD_SIGNAL)
    yield "macd_norm", macd / close
    yield "macd_signal_norm", signal / close
    yield "macd_hist_norm", hist / close
    slowk, slowd = talib.STOCH(high, low, close, STOCH_K, STOCH_SLOW, _SMA, STOCH_SLOW, _SMA)
    yield "stoch_k", slowk
    yield "stoch_d", slowd
    fastk, fastd = talib.STOCHRSI(close, STOCHRSI_PERIOD, STOCHRSI_K, STOCHRSI_D, _SMA)
    yield "stochrsi_k", fastk
    yield "stochrsi_d", fastd
    yield "willr", talib.WILLR(high, low, close, WILLR_PERIOD)
    yield "cci", talib.CCI(high, low, close, CCI_PERIOD)
    yield "cmo", talib.CMO(close, CMO_PERIOD)
    for period in ROC_PERIODS:
        yield f"rocp_{period}", talib.ROCP(close, period)
    yield "trix", talib.TRIX(close, TRIX_PERIOD)
    yield "ppo", talib.PPO(close, MACD_FAST, MACD_SLOW, _SMA)
    yield "ultosc", talib.ULTOSC(high, low, close, *ULTOSC_PERIODS)
    yield "bop", talib.BOP(open_, high, low, close)

    # Trend strength and direction.
    adx_period = config.adx_period
    plus_di = talib.PLUS_DI(high, low, close, adx_period)
    minus_di = talib.MINUS_DI(high, low, close, adx_period)
    yield "adx", talib.ADX(high, low, close, adx_period)
    yield "adxr", talib.ADXR(high, low, close, adx_period)
    yield "plus_di", plus_di
    yield "minus_di", minus_di
    yield "di_diff", plus_di - minus_di
    aroon_down, aroon_up = talib.AROON(high, low, AROON_PERIOD)
    yield "aroon_up", aroon_up
    yield "aroon_down", aroon_down
    yield "aroon_osc", aroon_up - aroon_down
    yield "linreg_slope_norm", talib.LINEARREG_SLOPE(close, LINREG_PERIOD) / close

    # Price relative to its moving averages.
    emas = {p: talib.EMA(close, p) for p in config.ema_periods}
    for period, ema in emas.items():
        yield f"ema_ratio_{period}", _rel(close, ema)
    ema_periods = sorted(config.ema_periods)
    for fast, slow in pairwise(ema_periods):
        yield f"ema_cross_{fast}_{slow}", _rel(emas[fast], emas[slow])
    for period in config.sma_periods:
        yield f"sma_ratio_{period}", _rel(close, talib.SMA(close, period))
    yield "kama_ratio", _rel(close, talib.KAMA(close, KAMA_PERIOD))
    yield "tema_ratio", _rel(close, talib.TEMA(close, TEMA_PERIOD))
    upper, middle, lower = talib.BBANDS(close, config.bb_period, config.bb_std, config.bb_std, _SMA)
    band = upper - lower
    yield "bb_pctb", (close - lower) / band
    yield "bb_width", band / middle
    yield "dist_high", _rel(close, talib.MAX(high, EXTREMES_WINDOW))
    yield "dist_low", _rel(close, talib.MIN(low, EXTREMES_WINDOW))

    # Candle shape.
    body_top = np.maximum(open_, close)
    body_bottom = np.minimum(open_, close)
    yield "body_pct", (close - open_) / open_
    yield "upper_wick_pct", (high - body_top) / close
    yield "lower_wick_pct", (body_bottom - low) / close
    yield "close_location", (close - low) / (high - low)

    # Volume and money flow (volume enters only as ratios to its own recent level).
    yield "mfi", talib.MFI(high, low, close, volume, MFI_PERIOD)
    obv = talib.OBV(close, volume)
    for window in config.volume_windows:
        volume_mean = _volume_mean(volume, window)
        yield f"volume_z_{window}", (volume - volume_mean) / talib.STDDEV(volume, window, 1.0)
        yield f"volume_rel_{window}", volume / volume_mean
        yield f"obv_flow_{window}", (obv - _lag(obv, window)) / (volume_mean * window)
    adosc = talib.ADOSC(high, low, close, volume, ADOSC_FAST, ADOSC_SLOW)
    yield "adosc_norm", adosc / _volume_mean(volume, ADOSC_SLOW)

    # Time of day and week, as points on a circle (candle open time, UTC).
    minute = (timestamp % _MS_PER_DAY) // 60_000
    weekday = ((timestamp // _MS_PER_DAY) + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
    yield "hour_sin", _SIN_DAY[minute]
    yield "hour_cos", _COS_DAY[minute]
    yield "dow_sin", _SIN_WEEK[weekday]
    yield "dow_cos", _COS_WEEK[weekday]


def _config_key(config: FeatureConfig) -> str:
    return json.dumps(config.model_dump(mode="json"), sort_keys=True)


@lru_cache(maxsize=32)
def _plan(config_key: str) -> tuple[tuple[str, ...], int]:
    """Feature names and the longest lookback, found by running the plan on a fixed random walk."""
    config = FeatureConfig.model_validate_json(config_key)
    rng = np.random.default_rng(0)
    rows = 1000
    close = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.01, rows)))
    open_ = np.concatenate([[100.0], close[:-1]])
    high = np.maximum(open_, close) * 1.002
    low = np.minimum(open_, close) * 0.998
    volume = rng.uniform(1.0, 2.0, rows)
    timestamp = np.arange(rows, dtype=np.int64) * 300_000
    names: list[str] = []
    lookback = 0
    with np.errstate(all="ignore"):
        for name, values in _compute(timestamp, open_, high, low, close, volume, config):
            names.append(name)
            finite = np.isfinite(values)
            lookback = max(lookback, int(np.argmax(finite)) if finite.any() else rows)
    if len(set(names)) != len(names):
        raise ValueError(f"feature configuration yields duplicate feature names: {names}")
    return tuple(names), lookback


def feature_columns(config: FeatureConfig) -> list[str]:
    """The feature names `engineer_features` produces for this configuration, in order."""
    return list(_plan(_config_key(config))[0])


def warmup_rows(config: FeatureConfig) -> int:
    """Rows dropped at the start: twice the longest lookback, so EMA-type seeds fade out."""
    return 2 * _plan(_config_key(config))[1]


def feature_set_id(config: FeatureConfig) -> str:
    """A stable id of the feature names, their configuration and the code version."""
    document = {
        "version": FEATURE_CODE_VERSION,
        "config": config.model_dump(mode="json"),
        "names": feature_columns(config),
    }
    digest = hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()
    return f"fs{FEATURE_CODE_VERSION}-{digest[:16]}"


def _column(candles: pd.DataFrame, name: str) -> np.ndarray:
    return np.ascontiguousarray(candles[name].to_numpy(dtype=np.float64))


def engineer_features(candles: pd.DataFrame, config: FeatureConfig | None = None) -> pd.DataFrame:
    """Features of one symbol's candles, indexed like the input minus the warm-up rows.

    Output columns: `timestamp`, `symbol` (when the input has it), then `feature_columns(config)`.
    """
    config = config or FeatureConfig()
    missing = [c for c in CANDLE_COLUMNS if c not in candles.columns]
    if missing:
        raise ValueError(f"engineer_features: candles lack the columns {missing}")
    timestamp = candles["timestamp"].to_numpy(dtype=np.int64)
    if len(timestamp) > 1 and not bool(np.all(timestamp[1:] > timestamp[:-1])):
        bad = int(np.argmax(timestamp[1:] <= timestamp[:-1])) + 1
        raise ValueError(f"engineer_features: timestamps must increase strictly (row {bad} does not)")
    names, _ = _plan(_config_key(config))
    skip = min(warmup_rows(config), len(candles))
    kept = len(candles) - skip
    block = np.empty((len(names), kept), dtype=np.float32)
    open_, high, low, close, volume = (_column(candles, c) for c in ("open", "high", "low", "close", "volume"))
    with np.errstate(all="ignore"):
        for position, (_, values) in enumerate(_compute(timestamp, open_, high, low, close, volume, config)):
            block[position] = values[skip:]
    np.copyto(block, 0.0, where=~np.isfinite(block))  # the documented after-warm-up rule
    features = pd.DataFrame(block.T, index=candles.index[skip:], columns=list(names), copy=False)
    features.insert(0, "timestamp", timestamp[skip:])
    if "symbol" in candles.columns:
        # the column's own array (no round trip through Python strings)
        features.insert(1, "symbol", candles["symbol"].iloc[skip:].array)
    return features
