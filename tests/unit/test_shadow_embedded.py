"""The shadow tester in the embedded mode (SQLite): the same service without PostgreSQL's COPY."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select, update

from app.core.db.models import ShadowTestResult
from app.model_registry import ModelRegistry
from app.shadow_tester import ShadowTester
from tests.unit.test_shadow_stats import simulate


def test_embedded_batch_outcomes_evaluation_and_promotion(sqlite_container) -> None:
    registry = ModelRegistry(sqlite_container)
    active_id = registry.register_model({"model_type": "xgboost", "file_path": "m/a.json", "sha256": "0" * 64})
    shadow_id = registry.register_model({"model_type": "xgboost", "file_path": "m/b.json", "sha256": "1" * 64})
    active, shadow, realized = simulate(1, 0.55, 0.62)
    items = [
        {
            "shadow_model_id": shadow_id,
            "active_model_id": active_id,
            "symbol": "ETHUSDT",
            "active_pred": {"direction": int(a), "confidence": 0.6},
            "shadow_pred": {"direction": int(s), "confidence": 0.7},
            "timestamp": datetime(2024, 1, 1) + timedelta(hours=k),  # asked hourly
        }
        for k, (a, s) in enumerate(zip(active, shadow, strict=True))
    ]
    tester = ShadowTester(sqlite_container)
    assert tester.record_shadow_predictions(items) == 1000
    with sqlite_container.session() as session:
        ids = list(session.scalars(select(ShadowTestResult.id).order_by(ShadowTestResult.id)))
    assert tester.record_outcome(ids[0], {"realized_return": float(realized[0])})
    with sqlite_container.session() as session:  # the rest at once: record_outcome is tested on PostgreSQL
        session.execute(
            update(ShadowTestResult),
            [
                {"id": i, "realized_return": float(r), "actual_outcome": {}}
                for i, r in zip(ids[1:], realized[1:], strict=True)
            ],
        )
    result = tester.evaluate_shadow_model(shadow_id)
    assert result.recommendation == "PROMOTE"
    assert result.shadow_metrics.avg_confidence == pytest.approx(0.7)
    # The same numbers as the pure evaluation of the same arrays, block-robust over the policy's
    # 2-hour blocks (12-candle labels of 5m candles, twice).
    from tests.unit.test_shadow_stats import evaluate_blocked

    assert result.test_blocks == 500 and result.block_hours == 2.0
    assert result.p_value_better == pytest.approx(evaluate_blocked(active, shadow, realized).p_value_better, rel=1e-12)
    assert [s["promoted"] for s in tester.evaluate_all_shadows()] == [True]
    assert registry.get_model(shadow_id).status == "ACTIVE"
    topics = [e["topic"] for e in sqlite_container.bus.recent("shadow.*")]
    assert topics == ["shadow.promoted", "shadow.promotion.recommended", "shadow.testing.started"]
