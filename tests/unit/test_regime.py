"""Regime detection: hysteresis against flapping, real shifts found, the service's events."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import numpy as np
import pandas as pd
import pytest

from app.regime_detector.detector import (
    Regime,
    RegimeDetector,
    RegimeService,
    RegimeThresholds,
    detect_regimes,
    market_measures,
)


def _prices(returns: np.ndarray) -> np.ndarray:
    return 100 * np.exp(np.cumsum(returns))


def _switches(regimes: list[Regime | None]) -> list[int]:
    return [i for i in range(1, len(regimes)) if regimes[i - 1] is not None and regimes[i] != regimes[i - 1]]


def test_hysteresis_prevents_flapping_on_noisy_input() -> None:
    rng = np.random.default_rng(11)
    close = _prices(rng.normal(0, 0.002, 6000))  # a driftless random walk sits near every threshold
    plain = detect_regimes(close, RegimeThresholds(margin=0.0, persist_bars=1))
    damped = detect_regimes(close, RegimeThresholds())
    assert len(_switches(plain)) > 100
    assert len(_switches(damped)) * 5 < len(_switches(plain))
    # every regime, once entered, is held for at least persist_bars bars
    switches = _switches(damped)
    assert all(later - earlier >= RegimeThresholds().persist_bars for earlier, later in pairwise(switches))


def test_a_single_noisy_bar_does_not_switch() -> None:
    detector = RegimeDetector(RegimeThresholds(persist_bars=3))
    assert detector.update(0.05, 0.9) == (None, Regime.RANGING)
    for _ in range(10):
        assert detector.update(0.05, 0.9) is None
        assert detector.update(0.9, 0.9) is None  # a trending bar now and then
    assert detector.state.current is Regime.RANGING
    assert detector.update(float("nan"), 1.0) is None  # warm-up bars are ignored


def test_real_shifts_are_detected() -> None:
    rng = np.random.default_rng(12)
    quiet = rng.normal(0, 0.001, 1500)
    trend = rng.normal(0.0015, 0.001, 400)
    storm = rng.normal(0, 0.004, 300)
    regimes = detect_regimes(_prices(np.concatenate([quiet, trend, storm])))
    assert regimes[1499] in (Regime.RANGING, Regime.CHOPPY)
    first_trending = next(i for i in range(1500, 1900) if regimes[i] is Regime.TRENDING)
    assert first_trending - 1500 <= 60
    assert regimes[1899] is Regime.TRENDING
    first_volatile = next(i for i in range(1900, 2200) if regimes[i] is Regime.VOLATILE)
    assert first_volatile - 1900 <= 40


def test_measures_reject_bad_prices() -> None:
    with pytest.raises(ValueError, match="positive and finite"):
        market_measures(np.array([1.0, 0.0, 2.0]), 2)


def test_service_keeps_the_regime_and_publishes_changes(sqlite_container) -> None:
    seen: list[dict[str, Any]] = []
    sqlite_container.bus.subscribe("regime.changed", seen.append, name="test-regime")
    rng = np.random.default_rng(13)
    returns = np.concatenate([rng.normal(0, 0.001, 800), rng.normal(0.0015, 0.001, 300)])
    candles = pd.DataFrame({"timestamp": 1_700_000_000_000 + 300_000 * np.arange(1100), "close": _prices(returns)})
    service = RegimeService(sqlite_container)

    service.update("BTC/USDT", candles.iloc[:800])
    before = service.current("BTC/USDT")
    assert before in (Regime.RANGING, Regime.CHOPPY)
    changes = service.update("BTC/USDT", candles)  # overlapping window: old bars are skipped
    assert service.current("BTC/USDT") is Regime.TRENDING
    assert changes and changes[-1].new is Regime.TRENDING
    trending = [e for e in seen if e["payload"]["new"] == "TRENDING"]
    assert trending and trending[-1]["payload"]["symbol"] == "BTC/USDT"
    assert {"old", "new", "at", "symbol"} <= set(trending[-1]["payload"])
    count = len(seen)
    assert service.update("BTC/USDT", candles) == [] and len(seen) == count  # a repeat publishes nothing
    with pytest.raises(ValueError, match="'close'"):
        service.update("BTC/USDT", candles[["timestamp"]])
