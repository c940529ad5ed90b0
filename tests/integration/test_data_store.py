"""The candle store on PostgreSQL and SQLite: round trips, refused writes change nothing, coverage."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from app.bootstrap import Container
from app.data_pipeline import CandleConflictError, CandleStore, CandleValidationError, import_candle_file
from app.data_pipeline.candle_store import merge_ranges, subtract_ranges

STEP = 300_000


@pytest.fixture(params=["pg_container", "sqlite_container"])
def container(request: pytest.FixtureRequest) -> Container:
    return request.getfixturevalue(request.param)


def _eth(data_dir: Path) -> pd.DataFrame:
    return pd.read_csv(data_dir / "binance_ETHUSDT_5m_4w.csv")


def _snapshot(store: CandleStore) -> tuple[pd.DataFrame, list[tuple[int, int]], list[dict[str, object]]]:
    return store.read("binance", "ETH/USDT", "5m"), store.coverage("binance", "ETH/USDT", "5m"), store.series()


def test_round_trip_is_exact(container: Container, data_dir: Path) -> None:
    store = CandleStore(container)
    candles = _eth(data_dir)
    result = store.write("binance", "ETH/USDT", "5m", candles)
    assert (result.inserted, result.replaced, result.unchanged) == (len(candles), 0, 0)
    back = store.read("binance", "ETH/USDT", "5m")
    pd.testing.assert_frame_equal(back, candles, check_exact=True)
    window = store.read("binance", "ETH/USDT", "5m", candles.timestamp[100], candles.timestamp[200])
    assert len(window) == 100 and window.timestamp.iloc[0] == candles.timestamp[100]
    again = store.write("binance", "ETH/USDT", "5m", candles)
    assert (again.inserted, again.unchanged) == (0, len(candles))
    assert store.series() == [
        {
            "exchange": "binance",
            "symbol": "ETH/USDT",
            "timeframe": "5m",
            "rows": len(candles),
            "first_ms": int(candles.timestamp.iloc[0]),
            "last_ms": int(candles.timestamp.iloc[-1]),
        }
    ]


def test_a_rejected_import_changes_nothing(container: Container, data_dir: Path, tmp_path: Path) -> None:
    store = CandleStore(container)
    candles = _eth(data_dir)
    import_candle_file(
        container, data_dir / "binance_ETHUSDT_5m_4w.csv", symbol="ETH/USDT", timeframe="5m", exchange="binance"
    )
    before = _snapshot(store)

    # 1. an invalid file (one negative volume among new and old candles)
    shifted = candles.copy()
    shifted["timestamp"] += 1000 * STEP
    shifted.loc[5000, "volume"] = -1
    bad = tmp_path / "bad.csv"
    shifted.to_csv(bad, index=False)
    with pytest.raises(CandleValidationError, match="line 5002"):
        import_candle_file(container, bad, symbol="ETH/USDT", timeframe="5m", exchange="binance")
    assert _snapshot(store)[0].equals(before[0]) and _snapshot(store)[1:] == before[1:]

    # 2. a valid file whose overlapping candles contradict the stored ones
    revised = candles.iloc[8000:].copy()
    revised.loc[8010, "close"] = revised.loc[8010, "close"] * 1.05
    revised.loc[8010, "high"] = max(revised.loc[8010, "high"], revised.loc[8010, "close"])
    extra = candles.iloc[-50:].copy()
    extra["timestamp"] += 64 * STEP  # new candles after the stored ones
    conflicting = tmp_path / "conflict.csv"
    pd.concat([revised, extra]).to_csv(conflicting, index=False)
    with pytest.raises(CandleConflictError, match=f"stored_conflict.*{int(candles.timestamp[8010])}"):
        import_candle_file(container, conflicting, symbol="ETH/USDT", timeframe="5m", exchange="binance")
    after = _snapshot(store)
    pd.testing.assert_frame_equal(after[0], before[0])
    assert after[1:] == before[1:]

    # 3. the operator may choose to replace, or to keep what is stored
    kept = import_candle_file(
        container, conflicting, symbol="ETH/USDT", timeframe="5m", exchange="binance", on_conflict="keep"
    )
    assert (kept.inserted, kept.replaced) == (50, 0)
    assert store.read("binance", "ETH/USDT", "5m").close[8010] == candles.close[8010]
    replaced = import_candle_file(
        container, conflicting, symbol="ETH/USDT", timeframe="5m", exchange="binance", on_conflict="replace"
    )
    assert (replaced.inserted, replaced.replaced) == (0, 1)
    assert store.read("binance", "ETH/USDT", "5m").close[8010] == revised.loc[8010, "close"]


def test_coverage_merges_and_reports_what_is_missing(container: Container, data_dir: Path) -> None:
    store = CandleStore(container)
    candles = _eth(data_dir)
    t = candles.timestamp
    store.write("binance", "ETH/USDT", "5m", candles.iloc[:100], covered=(int(t[0]), int(t[100])))
    store.write("binance", "ETH/USDT", "5m", candles.iloc[200:300], covered=(int(t[200]), int(t[300])))
    assert store.coverage("binance", "ETH/USDT", "5m") == [(t[0], t[100]), (t[200], t[300])]
    assert store.missing_ranges("binance", "ETH/USDT", "5m", int(t[50]), int(t[400])) == [
        (t[100], t[200]),
        (t[300], t[400]),
    ]
    store.write("binance", "ETH/USDT", "5m", candles.iloc[100:200], covered=(int(t[100]), int(t[200])))
    assert store.coverage("binance", "ETH/USDT", "5m") == [(t[0], t[300])]
    assert store.coverage("binance", "BTC/USDT", "5m") == []


def test_range_arithmetic() -> None:
    assert merge_ranges([(5, 10), (0, 5), (20, 30), (25, 26), (40, 40)]) == [(0, 10), (20, 30)]
    assert subtract_ranges((0, 100), []) == [(0, 100)]
    assert subtract_ranges((0, 100), [(10, 20), (15, 30), (90, 200)]) == [(0, 10), (30, 90)]
    assert subtract_ranges((10, 20), [(0, 50)]) == []
