"""Features: no look-ahead on real candles, TA-Lib agreement, scale-freeness, the feature-set id."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import talib

from app.core.policy import FeatureConfig
from app.data_pipeline import engineer_features, feature_columns, feature_set_id, warmup_rows
from app.data_pipeline.feature_block import FeatureBlock, minute_of_week

CONFIG = FeatureConfig()


def _candles(data_dir: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(data_dir / name)


@pytest.mark.parametrize("name", ["binance_BTCUSDT_5m_4w.csv", "binance_ADAUSDT_1h.csv", "bittrex_ETHBTC_5m.csv"])
def test_features_of_a_prefix_equal_the_full_computation(data_dir: Path, name: str) -> None:
    candles = _candles(data_dir, name)
    full = engineer_features(candles, CONFIG)
    warmup = warmup_rows(CONFIG)
    cuts = np.unique(np.linspace(warmup + 1, len(candles) - 1, 25).astype(int))
    for k in cuts:
        prefix = engineer_features(candles.iloc[:k], CONFIG)
        assert len(prefix) == k - warmup
        expected = full.iloc[: len(prefix)]
        pd.testing.assert_frame_equal(prefix, expected, check_exact=True, obj=f"{name} first {k} rows")


def test_changing_future_candles_leaves_past_features_alone(data_dir: Path) -> None:
    candles = _candles(data_dir, "binance_ETHUSDT_5m_4w.csv")
    cut = 3000
    shocked = candles.copy()
    shocked.loc[cut:, ["open", "high", "low", "close"]] *= 3.0
    shocked.loc[cut:, "volume"] *= 10.0
    before = engineer_features(candles, CONFIG)
    after = engineer_features(shocked, CONFIG)
    past = before.index < cut
    pd.testing.assert_frame_equal(before.loc[past], after.loc[past], check_exact=True)
    assert not before.loc[~past].equals(after.loc[~past])


def test_indicators_agree_with_talib(data_dir: Path) -> None:
    candles = _candles(data_dir, "binance_SOLUSDT_5m_4w.csv")
    o, h, lo, c, v = (candles[k].to_numpy(float) for k in ("open", "high", "low", "close", "volume"))
    features = engineer_features(candles, CONFIG)
    rows = features.index.to_numpy()
    macd, signal, hist = talib.MACD(c, 12, 26, 9)
    upper, middle, lower = talib.BBANDS(c, CONFIG.bb_period, CONFIG.bb_std, CONFIG.bb_std, 0)
    slowk, slowd = talib.STOCH(h, lo, c, 14, 3, 0, 3, 0)
    aroon_down, aroon_up = talib.AROON(h, lo, 25)
    expected = {
        "rsi_7": talib.RSI(c, 7),
        "rsi_14": talib.RSI(c, 14),
        "rsi_21": talib.RSI(c, 21),
        "macd_norm": macd / c,
        "macd_signal_norm": signal / c,
        "macd_hist_norm": hist / c,
        "bb_pctb": (c - lower) / (upper - lower),
        "bb_width": (upper - lower) / middle,
        "natr": talib.NATR(h, lo, c, CONFIG.atr_period),
        "adx": talib.ADX(h, lo, c, CONFIG.adx_period),
        "adxr": talib.ADXR(h, lo, c, CONFIG.adx_period),
        "plus_di": talib.PLUS_DI(h, lo, c, CONFIG.adx_period),
        "minus_di": talib.MINUS_DI(h, lo, c, CONFIG.adx_period),
        "stoch_k": slowk,
        "stoch_d": slowd,
        "cci": talib.CCI(h, lo, c, 20),
        "mfi": talib.MFI(h, lo, c, v, 14),
        "willr": talib.WILLR(h, lo, c, 14),
        "rocp_10": talib.ROCP(c, 10),
        "cmo": talib.CMO(c, 14),
        "trix": talib.TRIX(c, 15),
        "ultosc": talib.ULTOSC(h, lo, c, 7, 14, 28),
        "bop": talib.BOP(o, h, lo, c),
        "aroon_up": aroon_up,
        "aroon_down": aroon_down,
        "ema_ratio_21": c / talib.EMA(c, 21) - 1,
        "sma_ratio_50": c / talib.SMA(c, 50) - 1,
        "kama_ratio": c / talib.KAMA(c, 30) - 1,
        "tema_ratio": c / talib.TEMA(c, 20) - 1,
    }
    for name, values in expected.items():
        reference = values[rows]
        finite = np.isfinite(reference)
        assert finite.mean() > 0.99, name
        np.testing.assert_allclose(
            features[name].to_numpy(float)[finite], reference[finite], rtol=2e-6, atol=1e-6, err_msg=name
        )


def test_returns_volatility_and_time_features(data_dir: Path) -> None:
    candles = _candles(data_dir, "binance_BTCUSDT_1h.csv")
    features = engineer_features(candles, CONFIG)
    rows = features.index.to_numpy()
    log_close = np.log(candles["close"].to_numpy(float))
    np.testing.assert_allclose(features["ret_12"], (log_close[rows] - log_close[rows - 12]), rtol=1e-5, atol=1e-7)
    step = pd.Series(np.diff(log_close, prepend=np.nan))
    rolling_std = step.rolling(48).std(ddof=0).to_numpy()[rows]
    np.testing.assert_allclose(features["rvol_48"], rolling_std, rtol=1e-4)
    volume = candles["volume"]
    z = ((volume - volume.rolling(12).mean()) / volume.rolling(12).std(ddof=0)).to_numpy()[rows]
    np.testing.assert_allclose(features["volume_z_12"], z, rtol=1e-3, atol=1e-4)
    hours = pd.to_datetime(candles["timestamp"].to_numpy()[rows], unit="ms").hour
    np.testing.assert_allclose(features["hour_sin"], np.sin(2 * np.pi * hours / 24), atol=1e-6)
    weekdays = pd.to_datetime(candles["timestamp"].to_numpy()[rows], unit="ms").day_of_week
    np.testing.assert_allclose(features["dow_cos"], np.cos(2 * np.pi * weekdays / 7), atol=1e-6)


def test_output_shape_names_and_warmup(data_dir: Path) -> None:
    candles = _candles(data_dir, "binance_ADAUSDT_5m_4w.csv").assign(symbol="ADA/USDT")
    features = engineer_features(candles, CONFIG)
    names = feature_columns(CONFIG)
    assert len(names) >= 50
    assert list(features.columns) == ["timestamp", "symbol", *names]
    assert len(features) == len(candles) - warmup_rows(CONFIG)
    assert features.index[0] == warmup_rows(CONFIG)
    assert np.isfinite(features[names].to_numpy()).all()
    # zero-volume candles (an exchange outage) give finite, bounded volume features
    assert (candles["volume"] == 0).any()
    assert features[[n for n in names if n.startswith(("volume_", "obv_", "adosc"))]].abs().max().max() < 1e3


@pytest.mark.parametrize(
    ("name", "price_scale"), [("binance_ETHUSDT_5m_4w.csv", 2.0**10), ("bittrex_ADABTC_5m.csv", 2.0**-10)]
)
def test_features_are_scale_free(data_dir: Path, name: str, price_scale: float) -> None:
    # Powers of two scale floats exactly, so only the formulas (not round-off ties) are compared.
    candles = _candles(data_dir, name)
    scaled = candles.copy()
    scaled[["open", "high", "low", "close"]] *= price_scale
    scaled["volume"] *= 2.0**-7
    names = feature_columns(CONFIG)
    a = engineer_features(candles, CONFIG)[names].to_numpy()
    b = engineer_features(scaled, CONFIG)[names].to_numpy()
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_feature_set_id_follows_the_configuration() -> None:
    assert feature_set_id(CONFIG) == feature_set_id(FeatureConfig())
    other = FeatureConfig(rsi_periods=[7, 14, 28])
    assert feature_set_id(other) != feature_set_id(CONFIG)
    assert "rsi_28" in feature_columns(other)


def test_bad_input_is_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match="lack the columns"):
        engineer_features(pd.DataFrame({"timestamp": [1], "close": [1.0]}), CONFIG)
    frame = pd.DataFrame(
        {
            "timestamp": [2, 1],
            "open": [1.0, 1.0],
            "high": [1.0, 1.0],
            "low": [1.0, 1.0],
            "close": [1.0, 1.0],
            "volume": [1, 1],
        }
    )
    with pytest.raises(ValueError, match="row 1"):
        engineer_features(frame, CONFIG)


def test_short_input_gives_an_empty_frame(data_dir: Path) -> None:
    candles = _candles(data_dir, "binance_BTCUSDT_1h.csv").iloc[:50]
    features = engineer_features(candles, CONFIG)
    assert features.empty
    assert list(features.columns) == ["timestamp", *feature_columns(CONFIG)]


def test_the_block_zeroes_exactly_the_values_that_are_not_finite() -> None:
    rng = np.random.default_rng(0)
    rows, skip = 1000, 10
    columns = {
        "clean": rng.normal(size=rows),
        "nan": np.where(np.arange(rows) == 500, np.nan, rng.normal(size=rows)),
        "inf": np.where(np.arange(rows) == 999, np.inf, rng.normal(size=rows)),
        "minus_inf": np.where(np.arange(rows) == skip, -np.inf, rng.normal(size=rows)),
        "huge": np.full(rows, 3e38),  # finite float32 values whose sum overflows: left as they are
        "nan_in_warmup": np.where(np.arange(rows) < skip, np.nan, 1.0),  # dropped rows, nothing to zero
    }
    sink = FeatureBlock(rows, skip, len(columns))
    for name, values in columns.items():
        sink.put(name, values)
    expected = np.stack([v[skip:] for v in columns.values()]).astype(np.float32)
    expected[~np.isfinite(expected)] = 0.0
    sink.zero_non_finite()
    assert sink.names == list(columns)
    np.testing.assert_array_equal(sink.block, expected)
    assert sink.block[1, 500 - skip] == 0.0 and sink.block[2, -1] == 0.0 and sink.block[3, 0] == 0.0
    assert (sink.block[4] == np.float32(3e38)).all()


def test_minute_of_week_follows_the_calendar() -> None:
    rng = np.random.default_rng(1)
    week_ms = 7 * 86_400_000
    monday = 4 * 86_400_000  # 1970-01-05 00:00 UTC
    random = rng.integers(-(10**12), 5 * 10**12, 20_000)  # 1938 to 2128, any millisecond
    edges = np.array([monday + k * week_ms + d for k in (-3000, -1, 0, 1, 2900) for d in (-1, 0, 1, 59_999, 60_000)])
    timestamp = np.concatenate([random, edges, [0]]).astype(np.int64)
    when = pd.to_datetime(timestamp, unit="ms")
    expected = when.day_of_week.to_numpy() * 1440 + when.hour.to_numpy() * 60 + when.minute.to_numpy()
    np.testing.assert_array_equal(minute_of_week(timestamp), expected)


@pytest.mark.parametrize("dtype", ["str", "string[python]", "category", object])
def test_the_symbol_column_keeps_its_dtype_and_the_output_shares_no_memory_with_the_input(
    data_dir: Path, dtype: object
) -> None:
    candles = _candles(data_dir, "binance_ADAUSDT_5m_4w.csv").iloc[:600].assign(symbol="ADA/USDT")
    candles["symbol"] = candles["symbol"].astype(dtype)  # type: ignore[call-overload]
    timestamps, symbols = candles["timestamp"].copy(), candles["symbol"].copy()
    features = engineer_features(candles, CONFIG)
    assert list(features.columns[:2]) == ["timestamp", "symbol"]
    # an object column gets the dtype pandas infers for a new column of strings, as it always did
    expected = candles["symbol"].dtype if dtype is not object else pd.Series(["ADA/USDT"]).dtype
    assert features["symbol"].dtype == expected
    assert (features["symbol"] == "ADA/USDT").all()
    np.testing.assert_array_equal(features["timestamp"], candles["timestamp"].to_numpy()[features.index])
    features.iloc[0, 0] = -1
    if dtype != "category":
        features.iloc[0, 1] = "OTHER/USDT"
    pd.testing.assert_series_equal(candles["timestamp"], timestamps)
    pd.testing.assert_series_equal(candles["symbol"], symbols)


def test_every_block_method_is_its_float64_formula_rounded_and_zeroes_what_is_not_finite() -> None:
    rng = np.random.default_rng(3)
    rows, skip = 2000, 40
    a, b, c = rng.uniform(0.5, 2.0, (3, rows))
    b[[100, 700]] = 0.0  # divisions by zero: inf and (with a = 0) NaN
    a[700] = 0.0
    c[[300, 1500]] = 0.0
    a[900] = np.nan
    table = rng.normal(size=50).astype(np.float32)
    index = rng.integers(0, 50, rows - skip)
    lagged = np.concatenate([np.full(5, np.nan), a[:-5]])
    with np.errstate(all="ignore"):
        expected = {
            "put": a,
            "ratio": a / b,
            "spread": (a - b) / c,
            "relative": (a - b) / b,
            "subtract": a - b,
            "change": a - lagged,
            "change_ratio": (a - lagged) / c,
            "root": np.sqrt(a),
            "lookup": np.concatenate([np.zeros(skip), table[index]]),
        }
        sink = FeatureBlock(rows, skip, len(expected))
        sink.put("put", a)
        sink.ratio("ratio", a, b)
        sink.spread("spread", a, b, c)
        sink.relative("relative", a, b)
        sink.subtract("subtract", a, b)
        sink.change("change", a, 5)
        sink.change("change_ratio", a, 5, c)
        sink.root("root", a)
        sink.lookup("lookup", table, index)
    assert sink.names == list(expected)
    sink.zero_non_finite()
    for row, (name, values) in zip(sink.block, expected.items(), strict=True):
        reference = values[skip:].astype(np.float32)
        reference[~np.isfinite(reference)] = 0.0
        np.testing.assert_array_max_ulp(row, reference, maxulp=1)  # relative: x / ref - 1, within an ulp
        assert np.isfinite(row).all(), name
    ratio, spread = sink.block[1], sink.block[2]
    assert ratio[100 - skip] == ratio[700 - skip] == spread[300 - skip] == sink.block[0, 900 - skip] == 0.0
