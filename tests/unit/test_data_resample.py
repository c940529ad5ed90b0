"""Resampling candles to a longer timeframe (app/data_pipeline/resample.py), and the replay's files path."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from app.data_pipeline import read_candle_file
from app.data_pipeline.resample import resample_candles
from app.simulation.config import RunConfig, files_from_paths
from app.simulation.market import load_market

FIVE = 300_000
DATA = Path(__file__).resolve().parents[1] / "data" / "ohlcv"


def candles(stamps: list[int]) -> pd.DataFrame:
    n = len(stamps)
    rng = np.random.default_rng(3)
    close = 100 + rng.normal(size=n).cumsum()
    open_ = close + rng.normal(size=n)
    high = np.maximum(open_, close) + rng.random(n)
    low = np.minimum(open_, close) - rng.random(n)
    return pd.DataFrame(
        {"timestamp": stamps, "open": open_, "high": high, "low": low, "close": close, "volume": rng.random(n) * 10}
    )


def test_ohlcv_aggregated_on_the_grid() -> None:
    start = 1_600_000_200_000 // 900_000 * 900_000 + FIVE  # one candle past a 15m boundary
    five = candles([start + k * FIVE for k in range(14)])  # 2 leading, 4 full buckets = 12 candles
    out, report = resample_candles(five, "5m", "15m")
    assert out["timestamp"].tolist() == [start + 2 * FIVE + k * 900_000 for k in range(4)]
    for row, first in zip(out.itertuples(), range(2, 14, 3), strict=True):
        part = five.iloc[first : first + 3]
        assert row.open == part["open"].iloc[0] and row.close == part["close"].iloc[-1]
        assert row.high == part["high"].max() and row.low == part["low"].min()
        assert row.volume == pytest.approx(part["volume"].sum())
    assert report.incomplete_buckets == 1 and report.candles == 4 and report.source_candles == 14


def test_a_bucket_with_a_missing_candle_is_dropped_not_filled() -> None:
    start = 1_600_000_200_000 // 3_600_000 * 3_600_000
    stamps = [start + k * FIVE for k in range(36)]
    del stamps[15]  # the second hour loses one 5m candle
    out, report = resample_candles(candles(stamps), "5m", "1h")
    assert out["timestamp"].tolist() == [start, start + 2 * 3_600_000]
    assert report.incomplete_buckets == 1


def test_refuses_what_cannot_be_resampled() -> None:
    five = candles([k * FIVE for k in range(6)])
    with pytest.raises(ValueError, match="multiple"):
        resample_candles(five, "5m", "7m")
    with pytest.raises(ValueError, match="multiple"):
        resample_candles(five, "15m", "5m")
    with pytest.raises(ValueError, match="increasing"):
        resample_candles(five.iloc[[0, 2, 1]], "5m", "15m")


def test_real_file_resampled_matches_its_own_1h_candles() -> None:
    """The 5m file of the test data, resampled to 1h, gives the exchange's 1h candles where both exist."""
    five, _ = read_candle_file(DATA / "binance_BTCUSDT_5m_4w.csv", "5m")
    hourly, _ = read_candle_file(DATA / "binance_BTCUSDT_1h.csv", "1h")
    out, report = resample_candles(five, "5m", "1h")
    both = out.merge(hourly, on="timestamp", suffixes=("", "_x"))
    assert len(both) > 500 and report.candles == len(out)
    for column in ("open", "high", "low", "close"):
        np.testing.assert_allclose(both[column], both[f"{column}_x"], rtol=1e-12)
    np.testing.assert_allclose(both["volume"], both["volume_x"], rtol=1e-6)


def _real_15m_config(**days: Any) -> RunConfig:
    """A replay of the 4-week 5m slices as 15m candles, no injected shift; `days`: history, replay, start."""
    files = files_from_paths([str(p) for p in sorted(DATA.glob("binance_*_5m_4w.csv"))], "5m")
    return RunConfig(
        source="files",
        files=files,
        symbols=tuple(sorted(files)),
        timeframe="15m",
        file_timeframe="5m",
        shift_after_days=None,
        **days,
    )


def test_the_replay_reads_5m_files_as_15m_candles() -> None:
    feed = load_market(_real_15m_config(history_days=10, replay_days=4))
    assert set(feed.symbols) == {"ADA/USDT", "BTC/USDT", "ETH/USDT", "SOL/USDT"}
    stamps = feed.timestamps
    assert (stamps % 900_000 == 0).all() and len(stamps) == (10 + 4) * 96
    assert feed.steps == 4 * 96


def test_a_replay_longer_than_its_history_keeps_the_history_asked_for() -> None:
    """With enough candles the history is `history_days` even when the replay is longer (the fallback to
    half the candles is only for files too short for both)."""
    config = _real_15m_config(history_days=4, replay_days=20, files_start=datetime(2020, 12, 2))
    feed = load_market(config)
    assert feed.replay_index == 4 * 96 and feed.steps == 20 * 96
    assert int(feed.timestamps[0]) == 1606867200000  # 2020-12-02 00:00, the asked start
    short = replace(config, replay_days=40)  # more than the files hold: at least half is history
    feed = load_market(short)
    assert feed.replay_index >= len(feed.timestamps) // 2
