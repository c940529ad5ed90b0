"""Model health: metrics of prediction rows and the thresholds of the policy."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from app.core.policy import SupervisorConfig
from app.model_supervisor import calibration_error, classify, health_metrics

LIMITS = SupervisorConfig()


def metrics(**changes):
    base = {
        "outcomes": 100,
        "directional": 100,
        "winrate": 0.6,
        "calibration_error": 0.05,
        "latency_p50_ms": 5.0,
        "latency_p95_ms": 9.0,
        "long_short_ratio": 1.0,
    }
    return base | changes


@pytest.mark.parametrize(
    ("changes", "status", "reason"),
    [
        ({}, "HEALTHY", None),
        ({"winrate": 0.40}, "DEGRADED", "winrate"),
        ({"winrate": 0.30}, "CRITICAL", "winrate"),
        ({"calibration_error": 0.20}, "DEGRADED", "calibration"),
        ({"calibration_error": 0.40}, "CRITICAL", "calibration"),
        ({"latency_p95_ms": 700.0}, "DEGRADED", "latency"),
        ({"latency_p95_ms": 900.0, "latency_p50_ms": 600.0}, "CRITICAL", "latency"),
        ({"long_short_ratio": 4.0}, "DEGRADED", "long/short"),
        ({"long_short_ratio": 0.25}, "DEGRADED", "long/short"),
        ({"long_short_ratio": math.inf}, "CRITICAL", "long/short"),
        ({"long_short_ratio": 0.1}, "CRITICAL", "long/short"),
        # Too few outcomes to judge winrate and calibration, too few calls to judge bias.
        ({"winrate": 0.1, "calibration_error": 0.5, "outcomes": 10}, "HEALTHY", None),
        ({"long_short_ratio": 9.0, "directional": 10}, "HEALTHY", None),
    ],
)
def test_each_threshold(changes, status, reason) -> None:
    found, reasons = classify(metrics(**changes), LIMITS)
    assert found == status
    if reason:
        assert any(reason in r for r in reasons), reasons
    else:
        assert reasons == []


def test_the_worst_finding_decides() -> None:
    status, reasons = classify(metrics(winrate=0.40, long_short_ratio=math.inf), LIMITS)
    assert status == "CRITICAL" and len(reasons) == 2


def test_metrics_of_prediction_rows() -> None:
    frame = pd.DataFrame(
        {
            "symbol": ["BTC/USDT", "BTC/USDT", "ETHUSDT", "ETHUSDT"],
            "direction": [1.0, -1.0, 1.0, 0.0],
            "confidence": [0.9, 0.7, 0.5, 0.5],
            "latency_ms": [1.0, 2.0, 3.0, 100.0],
            "realized_return": [0.01, 0.01, 0.001, np.nan],
        }
    )
    out = health_metrics(frame, fee=0.002, symbols=["BTC/USDT", "ETH/USDT"])
    assert out["total_predictions"] == 4 and out["outcomes"] == 3
    # Right and profitable; wrong; right but under the fee: one win in three.
    assert out["winrate"] == pytest.approx(1 / 3)
    assert out["long_short_ratio"] == 2.0
    assert out["coverage"] == 0.5  # only BTC had a confident call
    assert out["latency_p50_ms"] == pytest.approx(2.5)


def test_calibration_error_is_zero_when_confidence_matches_accuracy() -> None:
    direction = np.ones(10)
    realized = np.array([0.01] * 7 + [-0.01] * 3)
    assert calibration_error(np.full(10, 0.7), direction, realized) == pytest.approx(0.0)
    assert calibration_error(np.full(10, 0.95), direction, realized) == pytest.approx(0.25)
