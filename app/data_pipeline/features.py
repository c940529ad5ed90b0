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
from functools import lru_cache
from itertools import pairwise
from typing import Any

import numpy as np
import pandas as pd
import talib
from pandas.api.extensions import ExtensionDtype
from pandas.api.internals import create_dataframe_from_blocks

from app.core.policy import FeatureConfig
from app.data_pipeline.feature_block import (
    DOW_COS_BY_MINUTE,
    DOW_SIN_BY_MINUTE,
    HOUR_COS_BY_MINUTE,
    HOUR_SIN_BY_MINUTE,
    FeatureBlock,
    diff,
    lag,
    minute_of_week,
    volume_mean,
)

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
# Functions of the clock, not of the market: two windows over other days or hours differ in them by
# construction, so a drift check would "find" drift in them between any training and current window.
CALENDAR_FEATURES = ("hour_sin", "hour_cos", "dow_sin", "dow_cos")

_MAX_FEATURES = 512  # room for the plan run, which learns the names
_SMA = talib.MA_Type.SMA


def _compute(
    sink: FeatureBlock,
    timestamp: np.ndarray,
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
    config: FeatureConfig,
) -> None:
    """Write every feature into `sink`, in order; the single source of the feature list."""
    log_close = np.log(close)
    ret_1 = diff(log_close, 1)

    # Returns over several horizons (log, so they add up and are scale-free).
    for horizon in config.return_horizons:
        sink.change(f"ret_{horizon}", log_close, horizon)

    # Realised volatility: rolling std of one-candle log returns, and Parkinson's range estimator.
    rvol = {w: talib.STDDEV(ret_1, w, 1.0) for w in config.volatility_windows}
    for window, values in rvol.items():
        sink.put(f"rvol_{window}", values)
    windows = sorted(config.volatility_windows)
    if len(windows) >= 2:
        sink.ratio(f"rvol_ratio_{windows[0]}_{windows[-1]}", rvol[windows[0]], rvol[windows[-1]])
    log_range_sq = np.divide(high, low)
    np.log(log_range_sq, out=log_range_sq)
    np.square(log_range_sq, out=log_range_sq)
    for window in config.volatility_windows:
        mean_square = talib.SMA(log_range_sq, window)
        mean_square *= 1.0 / (4.0 * np.log(2.0))
        sink.root(f"parkinson_{window}", mean_square)
    sink.put("natr", talib.NATR(high, low, close, config.atr_period))
    sink.spread("range_pct", high, low, close)
    sink.put("ret_autocorr", talib.CORREL(ret_1, lag(ret_1, 1), AUTOCORR_WINDOW))

    # Momentum oscillators (already bounded, scale-free).
    for period in config.rsi_periods:
        sink.put(f"rsi_{period}", talib.RSI(close, period))
    macd, signal, hist = talib.MACD(close, MACD_FAST, MACD_SLOW, MACD_SIGNAL)
    sink.ratio("macd_norm", macd, close)
    sink.ratio("macd_signal_norm", signal, close)
    sink.ratio("macd_hist_norm", hist, close)
    slowk, slowd = talib.STOCH(high, low, close, STOCH_K, STOCH_SLOW, _SMA, STOCH_SLOW, _SMA)
    sink.put("stoch_k", slowk)
    sink.put("stoch_d", slowd)
    fastk, fastd = talib.STOCHRSI(close, STOCHRSI_PERIOD, STOCHRSI_K, STOCHRSI_D, _SMA)
    sink.put("stochrsi_k", fastk)
    sink.put("stochrsi_d", fastd)
    sink.put("willr", talib.WILLR(high, low, close, WILLR_PERIOD))
    sink.put("cci", talib.CCI(high, low, close, CCI_PERIOD))
    sink.put("cmo", talib.CMO(close, CMO_PERIOD))
    for period in ROC_PERIODS:
        sink.put(f"rocp_{period}", talib.ROCP(close, period))
    sink.put("trix", talib.TRIX(close, TRIX_PERIOD))
    sink.put("ppo", talib.PPO(close, MACD_FAST, MACD_SLOW, _SMA))
    sink.put("ultosc", talib.ULTOSC(high, low, close, *ULTOSC_PERIODS))
    sink.put("bop", talib.BOP(open_, high, low, close))

    # Trend strength and direction.
    adx_period = config.adx_period
    plus_di = talib.PLUS_DI(high, low, close, adx_period)
    minus_di = talib.MINUS_DI(high, low, close, adx_period)
    sink.put("adx", talib.ADX(high, low, close, adx_period))
    sink.put("adxr", talib.ADXR(high, low, close, adx_period))
    sink.put("plus_di", plus_di)
    sink.put("minus_di", minus_di)
    sink.subtract("di_diff", plus_di, minus_di)
    aroon_down, aroon_up = talib.AROON(high, low, AROON_PERIOD)
    sink.put("aroon_up", aroon_up)
    sink.put("aroon_down", aroon_down)
    sink.subtract("aroon_osc", aroon_up, aroon_down)
    sink.ratio("linreg_slope_norm", talib.LINEARREG_SLOPE(close, LINREG_PERIOD), close)

    # Price relative to its moving averages: (close - average) / average.
    emas = {p: talib.EMA(close, p) for p in config.ema_periods}
    for period, ema in emas.items():
        sink.relative(f"ema_ratio_{period}", close, ema)
    for fast, slow in pairwise(sorted(config.ema_periods)):
        sink.relative(f"ema_cross_{fast}_{slow}", emas[fast], emas[slow])
    for period in config.sma_periods:
        sma = talib.SMA(close, period)
        sink.relative(f"sma_ratio_{period}", close, sma)
    kama = talib.KAMA(close, KAMA_PERIOD)
    sink.relative("kama_ratio", close, kama)
    tema = talib.TEMA(close, TEMA_PERIOD)
    sink.relative("tema_ratio", close, tema)
    upper, middle, lower = talib.BBANDS(close, config.bb_period, config.bb_std, config.bb_std, _SMA)
    band = upper - lower
    sink.spread("bb_pctb", close, lower, band)
    sink.ratio("bb_width", band, middle)
    highest = talib.MAX(high, EXTREMES_WINDOW)
    sink.relative("dist_high", close, highest)
    lowest = talib.MIN(low, EXTREMES_WINDOW)
    sink.relative("dist_low", close, lowest)

    # Candle shape.
    sink.relative("body_pct", close, open_)
    sink.spread("upper_wick_pct", high, np.maximum(open_, close), close)
    sink.spread("lower_wick_pct", np.minimum(open_, close), low, close)
    sink.spread("close_location", close, low, high - low)

    # Volume and money flow (volume enters only as ratios to its own recent level).
    sink.put("mfi", talib.MFI(high, low, close, volume, MFI_PERIOD))
    obv = talib.OBV(close, volume)
    for window in config.volume_windows:
        mean_volume = volume_mean(volume, window)
        sink.spread(f"volume_z_{window}", volume, mean_volume, talib.STDDEV(volume, window, 1.0))
        sink.ratio(f"volume_rel_{window}", volume, mean_volume)
        sink.change(f"obv_flow_{window}", obv, window, mean_volume * window)
    adosc = talib.ADOSC(high, low, close, volume, ADOSC_FAST, ADOSC_SLOW)
    sink.ratio("adosc_norm", adosc, volume_mean(volume, ADOSC_SLOW))

    # Time of day and week, as points on a circle (candle open time, UTC), of the rows kept only.
    minute = minute_of_week(timestamp[sink.skip :])  # Monday 00:00 = 0
    sink.lookup("hour_sin", HOUR_SIN_BY_MINUTE, minute)
    sink.lookup("hour_cos", HOUR_COS_BY_MINUTE, minute)
    sink.lookup("dow_sin", DOW_SIN_BY_MINUTE, minute)
    sink.lookup("dow_cos", DOW_COS_BY_MINUTE, minute)


def _config_key(config: FeatureConfig) -> str:
    return json.dumps(config.model_dump(mode="json"), sort_keys=True)


@lru_cache(maxsize=64)
def _columns(config_key: str, with_symbol: bool) -> pd.Index:
    """The output frame's column index, built once per configuration (and symbol column or not)."""
    return pd.Index(["timestamp", *(["symbol"] if with_symbol else []), *_plan(config_key)[0]])


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
    sink = FeatureBlock(rows, 0, _MAX_FEATURES)
    with np.errstate(all="ignore"):
        _compute(sink, timestamp, open_, high, low, close, volume, config)
    names = sink.names
    finite = np.isfinite(sink.block[: len(names)])
    lookback = max(int(np.argmax(row)) if row.any() else rows for row in finite)
    if len(set(names)) != len(names):
        raise ValueError(f"feature configuration yields duplicate feature names: {names}")
    return tuple(names), lookback


def feature_columns(config: FeatureConfig) -> list[str]:
    """The feature names `engineer_features` produces for this configuration, in order."""
    return list(_plan(_config_key(config))[0])


def warmup_rows(config: FeatureConfig) -> int:
    """Rows dropped at the start: twice the longest lookback, so EMA-type seeds fade out."""
    return _warmup(_config_key(config))


def _warmup(config_key: str) -> int:
    return 2 * _plan(config_key)[1]


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
    key = _config_key(config)
    names, _ = _plan(key)
    skip = min(_warmup(key), len(candles))
    sink = FeatureBlock(len(candles), skip, len(names))
    open_, high, low, close, volume = (_column(candles, c) for c in ("open", "high", "low", "close", "volume"))
    with np.errstate(all="ignore"):
        _compute(sink, timestamp, open_, high, low, close, volume, config)
    sink.zero_non_finite()  # the documented after-warm-up rule
    return _frame(candles, key, skip, timestamp, sink.block)


def _frame(candles: pd.DataFrame, key: str, skip: int, timestamp: np.ndarray, block: np.ndarray) -> pd.DataFrame:
    """The output frame, assembled from its blocks as they are: the float32 feature block is not
    copied, and no column is inserted one at a time (each insert rebuilt the column index)."""
    index = candles.index[skip:]
    blocks: list[tuple[Any, np.ndarray]] = [(timestamp[skip:].reshape(1, -1).copy(), np.array([0]))]
    symbol = candles["symbol"].iloc[skip:] if "symbol" in candles.columns else None
    as_block = symbol is not None and isinstance(symbol.dtype, ExtensionDtype)
    if symbol is not None and as_block:
        # the column's own array (no round trip through Python strings); a copy, O(1) for Arrow's
        blocks.append((symbol.array.copy(), np.array([1])))
    blocks.append((block, np.arange(len(blocks), len(blocks) + len(block))))
    frame = create_dataframe_from_blocks(blocks, index, _columns(key, as_block))
    if symbol is not None and not as_block:  # a NumPy (object) column: inserted, for pandas to infer its dtype
        frame.insert(1, "symbol", symbol.array)
    return frame
