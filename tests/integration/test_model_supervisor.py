"""The model supervisor on the real PostgreSQL: logs, health, performance rows and events."""

from __future__ import annotations

import itertools
from datetime import timedelta

import numpy as np
import pytest
from sqlalchemy import insert, select

from app.core.clock import utcnow
from app.core.db.models import Event, ModelPerformanceLog, PredictionLog
from app.core.db.models import ModelRegistry as ModelRow
from app.core.topics import TradeClosed
from app.model_supervisor.service import ModelSupervisor

pytestmark = pytest.mark.integration

N = 60
_versions = itertools.count(1)


def add_active(container, model_id: str) -> None:
    with container.session() as session:
        session.add(
            ModelRow(
                model_id=model_id,
                model_type=model_id,  # one ACTIVE model per type
                version=str(next(_versions)),
                status="ACTIVE",
                metrics={},
                created_at=utcnow(),
                file_path=f"models/{model_id}",
            )
        )


def add_predictions(container, model_id: str, *, correct: int, confidence: float, longs: int, slow: int = 0):
    """N predictions with outcomes: `correct` of them right, `longs` long calls, `slow` taking 800 ms."""
    direction = np.array([1] * longs + [-1] * (N - longs))
    right = np.zeros(N, dtype=bool)
    right[np.random.default_rng(0).permutation(N)[:correct]] = True
    realized = np.where(right, direction, -direction) * 0.01
    now = utcnow()
    rows = [
        {
            "model_id": model_id,
            "symbol": "BTC/USDT" if i % 2 else "ETH/USDT",
            "timestamp": now - timedelta(minutes=i + 1),
            "predicted_return": float(direction[i]) * 0.005,
            "direction": int(direction[i]),
            "confidence": confidence,
            "latency_ms": 800.0 if i < slow else 4.0,
            "outcome": {"realized_return": float(realized[i])},
            "realized_return": float(realized[i]),
            "outcome_recorded_at": now,
            "created_at": now,
        }
        for i in range(N)
    ]
    with container.session() as session:
        session.execute(insert(PredictionLog), rows)


def test_every_threshold_crossed_is_reported_and_published(pg_container) -> None:
    cases = {
        "healthy": {"correct": 42, "confidence": 0.7, "longs": 30},
        "losing": {"correct": 24, "confidence": 0.4, "longs": 30},
        "overconfident": {"correct": 42, "confidence": 0.95, "longs": 30},
        "slow": {"correct": 42, "confidence": 0.7, "longs": 30, "slow": 6},
        "biased": {"correct": 42, "confidence": 0.7, "longs": 50},
    }
    for model_id, spec in cases.items():
        add_active(pg_container, model_id)
        add_predictions(pg_container, model_id, **spec)
    report = {h.model_id: h for h in ModelSupervisor(pg_container).check_all_models()}
    expected = {
        "healthy": ("HEALTHY", None),
        "losing": ("DEGRADED", "winrate"),
        "overconfident": ("DEGRADED", "calibration"),
        "slow": ("DEGRADED", "latency"),
        "biased": ("DEGRADED", "long/short"),
    }
    for model_id, (status, reason) in expected.items():
        health = report[model_id]
        assert health.status == status, (model_id, health)
        assert reason is None or any(reason in r for r in health.reasons), (model_id, health.reasons)
    assert report["healthy"].winrate == pytest.approx(0.7)
    assert report["healthy"].coverage == 1.0
    with pg_container.session() as session:
        logs = session.scalars(select(ModelPerformanceLog)).all()
        events = session.scalars(select(Event).where(Event.topic == "model.performance.degraded")).all()
    assert {log.model_id for log in logs} == set(cases)
    assert {log.model_id: log.total_predictions for log in logs}["slow"] == N
    assert sorted(e.payload["model_id"] for e in events) == ["biased", "losing", "overconfident", "slow"]
    assert all(e.payload["recommendation"] == "DEGRADED" and e.payload["metrics"] for e in events)


def test_logged_predictions_get_outcomes_from_trades(pg_container) -> None:
    add_active(pg_container, "xgb")
    supervisor = ModelSupervisor(pg_container)
    prediction_id = supervisor.log_prediction(
        "xgb", {"predicted_return": 0.004, "direction": -1, "confidence": 0.8}, 3.5, symbol="BTC/USDT"
    )
    with pytest.raises(ValueError, match="latency_ms"):
        supervisor.log_prediction("xgb", {"direction": 1}, -1.0, symbol="BTC/USDT")
    with pg_container.session() as session:
        trade = {"trade_id": "t-9", "prediction_id": prediction_id, "pnl_pct": 1.5, "symbol": "BTC/USDT"}
        pg_container.bus.publish(session, TradeClosed(**trade, duration_hours=1.0))
    pg_container.bus.deliver_pending()
    with pg_container.session() as session:
        row = session.get(PredictionLog, prediction_id)
        assert row.realized_return == pytest.approx(-0.015)  # a short that made 1.5 %
    assert supervisor.log_outcome(prediction_id, {"realized_return": 0.5}) is False
    health = supervisor.get_model_health("xgb", lookback_hours=1)
    assert health.total_predictions == 1 and health.outcomes == 1 and health.latency_p50_ms == 3.5


def test_postgres_aggregation_equals_the_frame_computation(pg_container) -> None:
    # get_model_health on PostgreSQL aggregates in SQL (a day of logs can be tens of millions of
    # rows); the pandas computation of the embedded mode is the oracle, on awkward rows: flat and
    # NULL directions, open outcomes, a zero return, NULL confidences and latencies, confidences on
    # bin edges (0, 0.1, 0.6, 1.0), and rows before the window.
    from app.model_supervisor.service import health_metrics, health_metrics_postgres, prediction_frame

    add_active(pg_container, "sql_oracle")
    rng = np.random.default_rng(7)
    now = utcnow()
    rows = []
    for i in range(2000):
        realized = None if i % 7 == 0 else (0.0 if i % 50 == 1 else float(rng.normal(0, 0.01)))
        confidence = None if i % 13 == 0 else float(rng.choice([0.0, 0.1, 0.6, 1.0, rng.uniform(0, 1)]))
        rows.append(
            {
                "model_id": "sql_oracle",
                "symbol": str(rng.choice(["BTC/USDT", "ETH/USDT", "SOL/USDT"])),
                "timestamp": now - timedelta(minutes=int(i % 1500) + 1),  # a quarter before the window
                "direction": None if i % 31 == 0 else int(rng.choice([-1, 0, 1], p=[0.3, 0.2, 0.5])),
                "confidence": confidence,
                "latency_ms": None if i % 17 == 0 else float(rng.lognormal(1.0, 1.0)),
                "realized_return": realized,
                "created_at": now,
            }
        )
    with pg_container.session() as session:
        session.execute(insert(PredictionLog), rows)
    since, fee, symbols = now - timedelta(hours=20), 0.002, ["BTC/USDT", "ETH/USDT", "ADA/USDT"]
    with pg_container.session() as session:
        frame = prediction_frame(session, "sql_oracle", since)
        expected = health_metrics(frame, fee, symbols)
        got = health_metrics_postgres(session, "sql_oracle", since, fee, symbols)
    assert 1000 < expected["total_predictions"] < 2000 and expected["outcomes"] > 500
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key
    assert got["coverage"] == 2 / 3
    # and for a model with no logs at all
    with pg_container.session() as session:
        empty = health_metrics_postgres(session, "nobody", since, fee, symbols)
        assert empty == health_metrics(prediction_frame(session, "nobody", since), fee, symbols)
