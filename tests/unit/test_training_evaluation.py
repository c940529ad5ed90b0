"""Metrics, PnL simulation and baselines of the evaluation, on hand-checkable numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from app.forecasters.base import ConfidenceCalibrator, direction_correct
from app.model_training.evaluation import (
    expected_calibration_error,
    persistence_return,
    report,
    score_part,
    timeframe_ms,
)

HOUR = 3_600_000


def labelled(returns: list[float], symbol: str = "A") -> pd.DataFrame:
    r = np.asarray(returns, dtype=float)
    return pd.DataFrame(
        {
            "symbol": symbol,
            "timestamp": np.arange(len(r)) * HOUR,
            "future_return": r,
            "direction": np.sign(r).astype(int),
        }
    )


def test_direction_correct_counts_zero_as_a_coin_flip() -> None:
    got = direction_correct(np.array([0.1, -0.1, 0.0, 0.2]), np.array([0.3, 0.3, -0.1, 0.0]))
    assert got.tolist() == [1.0, 0.0, 0.5, 0.5]


def test_expected_calibration_error() -> None:
    assert expected_calibration_error(np.full(4, 0.75), np.array([1, 1, 1, 0.0])) == pytest.approx(0.0)
    assert expected_calibration_error(np.full(4, 0.9), np.array([1, 0, 1, 0.0])) == pytest.approx(0.4)


def test_persistence_is_the_label_one_horizon_earlier() -> None:
    frame = labelled([0.01, 0.02, -0.01, 0.03, 0.05])
    got = persistence_return(frame, None, horizon=2, step_ms=HOUR)
    assert got.tolist() == [0.0, 0.0, 0.01, 0.02, -0.01]


def test_baselines_on_the_same_rows() -> None:
    rng = np.random.default_rng(1)
    frame = labelled(list(rng.normal(0.001, 0.01, 400)))
    scored = score_part(frame, None, {}, horizon=1, fee_pct=0.1, step_ms=HOUR)
    result = report([scored], horizon=1, step_ms=HOUR)["baselines"]
    assert set(result) == {"zero_return", "persistence", "buy_and_hold"}
    zero = result["zero_return"]
    assert zero["sign_accuracy"] == 0.5 and zero["traded_share"] == 0.0
    assert zero["sharpe"] == 0.0 and zero["trades"] == 0
    assert zero["rmse"] == pytest.approx(np.sqrt(np.mean(frame["future_return"] ** 2)))
    held = result["buy_and_hold"]
    assert held["trades"] == 400 and held["traded_share"] == 1.0
    assert held["directional_accuracy"] == pytest.approx((frame["future_return"] > 0).mean())
    # Held throughout (one slice per candle at horizon 1), paying one entry and one exit.
    grown = np.expm1(frame["future_return"]).add(1).prod()
    assert held["total_return"] == pytest.approx(grown * (1 - 0.001) ** 2 - 1, rel=1e-3)
    assert all(m["rows"] == 400 for m in result.values())
    assert held["vs"]["zero_return"]["sharpe_diff"] == pytest.approx(held["sharpe"])
    low, high = held["interval_95"]["sharpe"]
    assert low < held["sharpe"] < high


def test_calibrator_maps_larger_moves_to_higher_confidence() -> None:
    rng = np.random.default_rng(0)
    predicted = rng.normal(0, 1, 4000)
    # The sign is right more often when |predicted| is large.
    actual = np.where(rng.random(4000) < 0.5 + 0.4 * np.tanh(np.abs(predicted)), predicted, -predicted)
    calibrator = ConfidenceCalibrator.fit(predicted, actual)
    low, high = calibrator(np.array([0.05, 2.5]))
    assert 0.4 < low < 0.65 < high <= 1.0


def test_timeframe_strings() -> None:
    assert timeframe_ms("5m") == 300_000 and timeframe_ms("1h") == HOUR
    with pytest.raises(ValueError, match="timeframe"):
        timeframe_ms("hourly")
