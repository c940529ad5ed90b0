"""The synthetic market: deterministic, valid candles on the grid, learnable, a clear shift."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from app.data_pipeline import engineer_features, generate_labels, synthetic_market

SYMBOLS = ["BTC/USDT", "ETH/USDT"]
DAY_5M = 288


def test_same_arguments_same_candles_and_prefixes_agree() -> None:
    a, info_a = synthetic_market(SYMBOLS, "2024-01-01", 3000, "5m", seed=11, shift_at=2000)
    b, info_b = synthetic_market(SYMBOLS, "2024-01-01", 3000, "5m", seed=11, shift_at=2000)
    assert info_a == info_b
    for symbol in SYMBOLS:
        pd.testing.assert_frame_equal(a[symbol], b[symbol])
    short, _ = synthetic_market(SYMBOLS, "2024-01-01", 1500, "5m", seed=11)
    pd.testing.assert_frame_equal(short["BTC/USDT"], a["BTC/USDT"].iloc[:1500])
    other, _ = synthetic_market(SYMBOLS, "2024-01-01", 3000, "5m", seed=12, shift_at=2000)
    assert not np.allclose(other["BTC/USDT"]["close"], a["BTC/USDT"]["close"])
    assert not np.allclose(a["ETH/USDT"]["close"], a["BTC/USDT"]["close"])


@pytest.mark.parametrize("timeframe", ["5m", "1h", "1d"])
def test_candles_are_valid_and_on_the_grid(timeframe: str) -> None:
    candles, info = synthetic_market(SYMBOLS, "2024-03-05 10:07:13", 2000, timeframe, seed=1)
    step = {"5m": 300_000, "1h": 3_600_000, "1d": 86_400_000}[timeframe]
    for frame in candles.values():
        assert list(frame.columns) == ["timestamp", "open", "high", "low", "close", "volume"]
        ts = frame["timestamp"].to_numpy()
        assert ts.dtype == np.int64
        assert (ts % step == 0).all() and (np.diff(ts) == step).all()
        assert ts[0] == info["start_ms"] >= pd.Timestamp("2024-03-05 10:07:13").value // 1_000_000
        assert (frame[["open", "high", "low", "close"]] > 0).all().all()
        assert (frame["low"] <= frame[["open", "close"]].min(axis=1)).all()
        assert (frame["high"] >= frame[["open", "close"]].max(axis=1)).all()
        assert (frame["volume"] >= 0).all()


def test_shift_is_reported_and_changes_the_market() -> None:
    periods = 40 * DAY_5M
    shift = pd.Timestamp("2024-01-31")
    candles, info = synthetic_market(SYMBOLS, "2024-01-01", periods, "5m", seed=5, shift_at=shift)
    index = info["shift_index"]
    assert info["shift_at_ms"] == shift.value // 1_000_000 == candles["BTC/USDT"]["timestamp"].iloc[index]
    assert info["regimes"][-1] == (index, "shifted")
    assert {name for _, name in info["regimes"][:-1]} == {"trend", "range", "volatile"}
    frame = candles["BTC/USDT"]
    returns = np.diff(np.log(frame["close"].to_numpy()))
    before, after = returns[: index - 1], returns[index:]
    assert after.std() > 1.5 * before.std()
    lag1 = lambda r: np.corrcoef(r[1:], r[:-1])[0, 1]  # noqa: E731
    assert lag1(after) < -0.2 < lag1(before)


@pytest.mark.parametrize("seed", [3, 4])
def test_pre_shift_market_is_learnable_and_the_shift_reverses_it(seed: int) -> None:
    """Before the shift recent moves continue (momentum), after it they are pulled back (a range):
    the same feature predicts the other side, on 15m candles as the main run trades them."""
    day = 96
    candles, info = synthetic_market(SYMBOLS, "2024-01-01", 40 * day, "15m", seed=seed, shift_at=25 * day)
    for frame in candles.values():
        data = engineer_features(frame).join(generate_labels(frame)[["future_return"]], how="inner")
        pre = data[data.index < info["shift_index"] - 12]
        post = data[data.index > info["shift_index"] + day]
        assert pre["rsi_14"].corr(pre["future_return"]) > 0.1
        assert post["rsi_14"].corr(post["future_return"]) < -0.1
        assert post["rvol_48"].median() > 1.5 * pre["rvol_48"].median()


def test_the_range_pulls_prices_back_to_the_level_at_the_shift() -> None:
    """After the shift each log price stays within a few of its stationary deviations of its level at
    the shift (a random walk of the same volatility would wander far further)."""
    periods = 30 * DAY_5M
    candles, info = synthetic_market(SYMBOLS, "2024-01-01", periods, "5m", seed=9, shift_at=10 * DAY_5M)
    for frame in candles.values():
        logs = np.log(frame["close"].to_numpy())
        index = info["shift_index"]
        deviation = logs[index:] - logs[index - 1]
        steps = np.diff(logs[index:])
        walk_spread = steps.std() * np.sqrt(len(steps))  # a random walk's spread after as many candles
        assert np.abs(deviation).max() < 0.5 * walk_spread, (np.abs(deviation).max(), walk_spread)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="periods"):
        synthetic_market(SYMBOLS, "2024-01-01", 0)
    with pytest.raises(ValueError, match="timeframe"):
        synthetic_market(SYMBOLS, "2024-01-01", 10, "5x")
    with pytest.raises(ValueError, match="shift_at"):
        synthetic_market(SYMBOLS, "2024-01-01", 10, "5m", shift_at=pd.Timestamp("2025-01-01"))
