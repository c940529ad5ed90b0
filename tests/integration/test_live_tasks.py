"""The shadow, supervisor and retention tasks on a real Celery worker process."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from app.core.clock import utcnow
from app.core.db.models import ModelPerformanceLog, ShadowTestResult
from app.model_registry import ModelRegistry
from app.shadow_tester import ShadowTester
from tests.integration.test_shadow_tester import add_model
from tests.services import celery_worker
from tests.unit.test_shadow_stats import simulate

pytestmark = pytest.mark.integration


def test_worker_promotes_a_ready_shadow_and_checks_health(pg_container, worker_env, tmp_path) -> None:
    from tasks.maintenance import apply_retention
    from tasks.shadow import evaluate_all_shadows, resolve_outcomes
    from tasks.supervisor import check_all_models
    from workers.celery_app import configure

    configure(pg_container.settings)
    add_model(pg_container, "active_1", "ACTIVE")
    add_model(pg_container, "shadow_1", "SHADOW")
    active, shadow, realized = simulate(1, 0.55, 0.62)
    first_hour = utcnow().replace(minute=0, second=0, microsecond=0) - timedelta(hours=1001)
    items = [
        {
            "shadow_model_id": "shadow_1",
            "active_model_id": "active_1",
            "symbol": "BTCUSDT",
            "active_pred": {"direction": int(a)},
            "shadow_pred": {"direction": int(s)},
            "timestamp": first_hour + timedelta(hours=k),  # asked hourly over the last 1000 hours
        }
        for k, (a, s) in enumerate(zip(active, shadow, strict=True))
    ]
    ShadowTester(pg_container).record_shadow_predictions(items)
    with pg_container.session() as session:
        ids = list(session.scalars(select(ShadowTestResult.id).order_by(ShadowTestResult.id)))
        session.execute(
            update(ShadowTestResult),
            [
                {"id": i, "realized_return": float(r), "actual_outcome": {"realized_return": float(r)}}
                for i, r in zip(ids, realized, strict=True)
            ],
        )
    log = tmp_path / "worker.log"
    with celery_worker(worker_env, queues="default", log_path=log):
        expected = {"resolved": 0, "expired": 0, "pending": 0, "prediction_logs_resolved": 0}
        assert resolve_outcomes.delay().get(timeout=60) == expected
        result = evaluate_all_shadows.delay().get(timeout=60)
        assert result == {"shadows": [{"shadow_model_id": "shadow_1", "promoted": True, "status": "ACTIVE"}]}
        health = check_all_models.delay().get(timeout=60)
        # The test is over (shadow_1 promoted): retention may now delete its pairs past the policy's age.
        with pg_container.session() as session:
            session.execute(
                update(ShadowTestResult)
                .where(ShadowTestResult.id.in_(ids[:100]))
                .values(timestamp=utcnow() - timedelta(days=200))
            )
        retention = apply_retention.delay().get(timeout=60)
    assert retention["complete"] and retention["deleted"]["shadow_test_results"] == 100, retention
    assert health["models"][0]["model_id"] == "shadow_1"
    assert ModelRegistry(pg_container).get_model("active_1").status == "RETIRED"
    with pg_container.session() as session:
        assert session.scalars(select(ModelPerformanceLog.model_id)).all() == ["shadow_1"]
