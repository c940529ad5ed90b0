"""Drift checks on the real PostgreSQL: drift_events rows and drift.detected events together."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select

from app.core.clock import utcnow
from app.core.db.models import DriftEvent, Event, ModelRegistry, PredictionLog
from app.drift_detector.reference import build_reference, load_reference, save_reference
from app.drift_detector.service import check_feature_drift, check_performance_drift, check_prediction_drift

pytestmark = pytest.mark.integration

FEATURES = [f"feature_{i}" for i in range(12)]


def _frame(rng: np.random.Generator, rows: int, shift: float = 0.0, shifted: int = 0) -> pd.DataFrame:
    values = rng.standard_normal((rows, len(FEATURES)))
    values[:, :shifted] += shift
    return pd.DataFrame(values, columns=FEATURES)


def _rows(container) -> tuple[list[DriftEvent], list[Event]]:
    with container.session_factory() as session:
        drift = list(session.scalars(select(DriftEvent).order_by(DriftEvent.id)))
        events = list(session.scalars(select(Event).where(Event.topic == "drift.detected").order_by(Event.id)))
    return drift, events


def _model(container, model_id: str, metrics: dict) -> None:
    with container.session() as session:
        session.add(
            ModelRegistry(
                model_id=model_id,
                model_type="xgboost",
                version="1",
                status="ACTIVE",
                metrics=metrics,
                created_at=utcnow(),
                file_path=f"models/xgboost/{model_id}/model.json",
            )
        )


def test_feature_drift_writes_rows_and_events_together(pg_container) -> None:
    rng = np.random.default_rng(3)
    reference = build_reference(_frame(rng, 20000), FEATURES, {"model_type": "xgboost", "model_id": "m1"})
    stored = save_reference(pg_container, reference, "models/xgboost/m1/model.json")
    reference = load_reference(pg_container, stored.path, stored.sha256)

    quiet = check_feature_drift(pg_container, reference, _frame(rng, 2000))
    assert quiet.checked and quiet.severity.rank <= 1  # NONE or LOW
    before = len(_rows(pg_container)[0])

    result = check_feature_drift(pg_container, reference, _frame(rng, 2000, shift=0.8, shifted=6))
    assert result.severity.value in ("high", "critical"), result.summary
    drift, events = _rows(pg_container)
    drift = drift[before:]
    assert {row.feature_name for row in drift} >= set(FEATURES[:6])
    assert len(events) == len(_rows(pg_container)[0])  # one event per row, never one without the other
    latest = events[-len(drift) :]
    for row, event in zip(drift, latest, strict=True):
        assert row.drift_type == "feature" and row.model_type == "xgboost"
        assert row.severity == result.severity.value and row.threshold == pytest.approx(0.05)
        assert event.payload["drift_event_id"] == row.id
        assert event.payload["feature"] == row.feature_name
        assert event.payload["p_value"] == pytest.approx(row.p_value)
        assert event.payload["severity"] == row.severity and event.payload["model_type"] == "xgboost"
        assert event.payload["check_id"] == result.check_id


def test_small_windows_and_disabled_policy_record_nothing(pg_container) -> None:
    rng = np.random.default_rng(4)
    reference = build_reference(_frame(rng, 5000), FEATURES)
    small = check_feature_drift(pg_container, reference, _frame(rng, 50, shift=3.0, shifted=12))
    assert not small.checked and "policy wants 200" in small.reason
    pg_container.policy_store.update({"clm_config": {"drift_detection": {"enabled": False}}})
    disabled = check_feature_drift(pg_container, reference, _frame(rng, 2000, shift=3.0, shifted=12))
    assert not disabled.checked
    assert _rows(pg_container) == ([], [])


def test_prediction_drift_last_window_against_the_one_before(pg_container) -> None:
    _model(pg_container, "m-pred", {"directional_accuracy": 0.55})
    rng = np.random.default_rng(5)
    now = utcnow()
    with pg_container.session() as session:
        for day_offset, confidence_mean in ((45, 0.6), (15, 0.35)):  # previous window, recent window
            for i in range(400):
                session.add(
                    PredictionLog(
                        model_id="m-pred",
                        symbol="BTC/USDT",
                        timestamp=now - timedelta(days=day_offset, minutes=i),
                        predicted_return=float(rng.normal(0, 0.01)),
                        direction=1,
                        confidence=float(np.clip(rng.normal(confidence_mean, 0.05), 0, 1)),
                        created_at=now,
                    )
                )
    result = check_prediction_drift(pg_container, "xgboost", lookback_days=30)
    assert result.checked and result.severity.rank >= 3, result.summary
    drift, _events = _rows(pg_container)
    assert [row.feature_name for row in drift] == ["confidence"]
    assert drift[0].drift_type == "prediction"


def test_performance_drift_against_the_models_own_baseline(pg_container) -> None:
    _model(pg_container, "m-perf", {"directional_accuracy": 0.62})
    rng = np.random.default_rng(6)
    now = utcnow()
    with pg_container.session() as session:
        for i in range(300):
            win = rng.uniform() < 0.4
            session.add(
                PredictionLog(
                    model_id="m-perf",
                    symbol="ETH/USDT",
                    timestamp=now - timedelta(hours=i % 100),
                    direction=1,
                    confidence=0.7,
                    realized_return=0.01 if win else -0.012,
                    created_at=now,
                )
            )
    result = check_performance_drift(pg_container, "m-perf", lookback_days=7)
    assert result.severity.value in ("high", "critical"), result.summary
    drift, events = _rows(pg_container)
    assert {row.feature_name for row in drift} == {"winrate", "avg_pnl"}
    assert all(row.model_type == "xgboost" and row.drift_type == "performance" for row in drift)
    assert len(events) == 2 and events[0].payload["baseline_winrate"] == pytest.approx(0.62)
    with pytest.raises(ValueError, match="no model 'nope'"):
        check_performance_drift(pg_container, "nope")


@pytest.mark.parametrize("backend", ["pg_container", "sqlite_container"])
def test_drift_reads_an_evenly_spaced_sample_of_a_large_window(backend, request) -> None:
    from sqlalchemy import insert

    from app.drift_detector.samples import prediction_sample

    container = request.getfixturevalue(backend)
    _model(container, "m-many", {})
    now = utcnow()
    start, end = now - timedelta(days=10), now
    rows = [
        dict(
            model_id="m-many", symbol="BTC/USDT", timestamp=start + timedelta(seconds=72 * i + 1),
            predicted_return=float(i), confidence=0.5, created_at=now,
            realized_return=None if i % 4 == 0 else 0.01,  # a quarter still open
        )
        for i in range(12_000)
    ]  # fmt: skip
    rows.append(dict(rows[0], timestamp=start - timedelta(minutes=1), predicted_return=-1.0))  # before the window
    with container.session() as session:
        session.execute(insert(PredictionLog), rows)
    columns = ("predicted_return", "realized_return")
    with container.session() as session:
        everything = prediction_sample(session, ["m-many"], start, end, columns, 20_000)
        sample = prediction_sample(session, ["m-many"], start, end, columns, 500)
        closed = prediction_sample(session, ["m-many"], start, end, columns, 500, closed_only=True)
        with pytest.raises(ValueError, match="no such prediction_logs columns"):
            prediction_sample(session, ["m-many"], start, end, ("predicted_return; DROP",), 500)
    assert sorted(everything["predicted_return"]) == [float(i) for i in range(12_000)]
    if backend == "sqlite_container":  # embedded: the window, whatever its size
        assert len(sample) == 12_000 and len(closed) == 9_000
        return
    # 500 slices of the window, the first log of each: evenly spaced, none twice, none outside
    values = sample["predicted_return"].to_numpy()
    assert len(values) == 500 and len(set(values)) == 500 and values.min() >= 0
    assert np.all(np.diff(np.sort(values)) == 24)  # every 24th log (12,000 / 500)
    assert len(closed) == 500 and closed["realized_return"].notna().all()


def test_prediction_drift_on_a_sample_still_finds_the_shift(pg_container) -> None:
    pg_container.policy_store.update({"clm_config": {"drift_detection": {"max_sample_rows": 300}}})
    _model(pg_container, "m-sampled", {})
    rng = np.random.default_rng(8)
    now = utcnow()
    from sqlalchemy import insert

    rows = [
        dict(
            model_id="m-sampled", symbol="BTC/USDT", timestamp=now - timedelta(days=day, minutes=i),
            predicted_return=float(rng.normal(0, 0.01)), direction=1, created_at=now,
            confidence=float(np.clip(rng.normal(mean, 0.05), 0, 1)),
        )
        for day, mean in ((45, 0.6), (15, 0.35))
        for i in range(2000)
    ]  # fmt: skip
    with pg_container.session() as session:
        session.execute(insert(PredictionLog), rows)
    result = check_prediction_drift(pg_container, "xgboost", lookback_days=30)
    assert result.checked and result.severity.rank >= 3, result.summary
    with pytest.raises(Exception, match="max_sample_rows"):
        pg_container.policy_store.update({"clm_config": {"drift_detection": {"max_sample_rows": 100}}})
